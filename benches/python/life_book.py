"""The book's Game of Life strategies (Effective Python, items 56-60), as a baseline.

`concur life bench --python python3` feeds this script to Python on stdin with the same
arguments it gives `concur life`, and compares the two on the same machine. The code
follows the book: Grid/LockingGrid, count_neighbors, game_logic with blocking I/O
(here a sleep of --latency), simulate, simulate_threaded, simulate_pipeline with
ClosableQueue/StoppableWorker, simulate_phased_pipeline, simulate_pool with
ThreadPoolExecutor, and the asyncio version. Random fills use Python's own generator,
so boards differ from concur's; timing does not depend on the pattern.
"""

import argparse
import asyncio
import json
import random
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from queue import Queue
from threading import Lock, Thread

ALIVE = "*"
EMPTY = "-"
LATENCY = 0.0


class Grid:
    def __init__(self, height, width):
        self.height = height
        self.width = width
        self.rows = [[EMPTY] * width for _ in range(height)]

    def get(self, y, x):
        return self.rows[y % self.height][x % self.width]

    def set(self, y, x, state):
        self.rows[y % self.height][x % self.width] = state

    def alive(self):
        return sum(row.count(ALIVE) for row in self.rows)


class LockingGrid(Grid):
    def __init__(self, height, width):
        super().__init__(height, width)
        self.lock = Lock()

    def get(self, y, x):
        with self.lock:
            return super().get(y, x)

    def set(self, y, x, state):
        with self.lock:
            return super().set(y, x, state)


def count_neighbors(y, x, get):
    states = [get(y - 1, x + 0), get(y - 1, x + 1), get(y + 0, x + 1), get(y + 1, x + 1),
              get(y + 1, x + 0), get(y + 1, x - 1), get(y + 0, x - 1), get(y - 1, x - 1)]
    return sum(1 for s in states if s == ALIVE)


def rule(state, neighbors):
    if state == ALIVE:
        if neighbors < 2 or neighbors > 3:
            return EMPTY
    elif neighbors == 3:
        return ALIVE
    return state


def game_logic(state, neighbors):
    time.sleep(LATENCY)  # the blocking I/O
    return rule(state, neighbors)


async def game_logic_async(state, neighbors):
    await asyncio.sleep(LATENCY)
    return rule(state, neighbors)


def step_cell(y, x, get, set):
    state = get(y, x)
    neighbors = count_neighbors(y, x, get)
    set(y, x, game_logic(state, neighbors))


def simulate(grid):
    next_grid = Grid(grid.height, grid.width)
    for y in range(grid.height):
        for x in range(grid.width):
            step_cell(y, x, grid.get, next_grid.set)
    return next_grid


def simulate_threaded(grid):
    next_grid = LockingGrid(grid.height, grid.width)
    threads = []
    for y in range(grid.height):
        for x in range(grid.width):
            thread = Thread(target=step_cell, args=(y, x, grid.get, next_grid.set))
            thread.start()
            threads.append(thread)
    for thread in threads:
        thread.join()
    return next_grid


class ClosableQueue(Queue):
    SENTINEL = object()

    def close(self):
        self.put(self.SENTINEL)

    def __iter__(self):
        while True:
            item = self.get()
            try:
                if item is self.SENTINEL:
                    return
                yield item
            finally:
                self.task_done()


class StoppableWorker(Thread):
    def __init__(self, func, in_queue, out_queue):
        super().__init__()
        self.func, self.in_queue, self.out_queue = func, in_queue, out_queue

    def run(self):
        for item in self.in_queue:
            self.out_queue.put(self.func(item))


def game_logic_thread(item):
    y, x, state, neighbors = item
    try:
        next_state = game_logic(state, neighbors)
    except Exception as e:
        next_state = e
    return (y, x, next_state)


def count_neighbors_thread(item):
    y, x, state, get = item
    try:
        neighbors = count_neighbors(y, x, get)
    except Exception as e:
        neighbors = e
    return (y, x, state, neighbors)


def drain(grid_class, grid, out_queue):
    out_queue.close()
    next_grid = grid_class(grid.height, grid.width)
    for y, x, next_state in out_queue:
        if isinstance(next_state, Exception):
            raise RuntimeError(f"SimulationError at ({y}, {x})") from next_state
        next_grid.set(y, x, next_state)
    return next_grid


def simulate_pipeline(grid, in_queue, out_queue):
    for y in range(grid.height):
        for x in range(grid.width):
            in_queue.put((y, x, grid.get(y, x), count_neighbors(y, x, grid.get)))
    in_queue.join()
    return drain(Grid, grid, out_queue)


def simulate_phased_pipeline(grid, in_queue, logic_queue, out_queue):
    for y in range(grid.height):
        for x in range(grid.width):
            in_queue.put((y, x, grid.get(y, x), grid.get))
    in_queue.join()
    logic_queue.join()
    return drain(LockingGrid, grid, out_queue)


def simulate_pool(pool, grid):
    next_grid = LockingGrid(grid.height, grid.width)
    futures = [pool.submit(step_cell, y, x, grid.get, next_grid.set)
               for y in range(grid.height) for x in range(grid.width)]
    for future in futures:
        future.result()
    return next_grid


async def step_cell_async(y, x, get, set):
    state = get(y, x)
    neighbors = count_neighbors(y, x, get)
    set(y, x, await game_logic_async(state, neighbors))


async def simulate_async(grid):
    next_grid = Grid(grid.height, grid.width)
    await asyncio.gather(*[step_cell_async(y, x, grid.get, next_grid.set)
                           for y in range(grid.height) for x in range(grid.width)])
    return next_grid


def parse_duration(text):
    for unit, scale in (("us", 1e-6), ("ms", 1e-3), ("s", 1.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text)


def main():
    global LATENCY
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", default="serial")
    parser.add_argument("--size", default="5x9")
    parser.add_argument("--latency", default="0s")
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--random", type=float)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    LATENCY = parse_duration(args.latency)
    height, width = (int(n) for n in args.size.split("x"))

    grid = LockingGrid(height, width)
    if args.random is None:
        for y, x in [(0, 3), (1, 4), (2, 2), (2, 3), (2, 4)]:
            grid.set(y, x, ALIVE)
    else:
        rng = random.Random(args.seed)
        for y in range(height):
            for x in range(width):
                if rng.random() < args.random:
                    grid.set(y, x, ALIVE)

    workers = args.workers
    cleanup = lambda: None
    if args.strategy == "serial":
        step = simulate
    elif args.strategy == "thread-per-cell":
        step = simulate_threaded
    elif args.strategy == "pipeline":
        workers = workers or 5
        in_queue, out_queue = ClosableQueue(), ClosableQueue()
        threads = [StoppableWorker(game_logic_thread, in_queue, out_queue) for _ in range(workers)]
        for t in threads:
            t.start()
        step = lambda g: simulate_pipeline(g, in_queue, out_queue)

        def cleanup():
            for _ in threads:
                in_queue.close()
            for t in threads:
                t.join()
    elif args.strategy == "phased-pipeline":
        workers = workers or 5
        in_queue, logic_queue, out_queue = ClosableQueue(), ClosableQueue(), ClosableQueue()
        threads = [StoppableWorker(count_neighbors_thread, in_queue, logic_queue) for _ in range(workers)]
        threads += [StoppableWorker(game_logic_thread, logic_queue, out_queue) for _ in range(workers)]
        for t in threads:
            t.start()
        step = lambda g: simulate_phased_pipeline(g, in_queue, logic_queue, out_queue)

        def cleanup():
            for _ in range(workers):
                in_queue.close()
            for _ in range(workers):
                logic_queue.close()
            for t in threads:
                t.join()
    elif args.strategy == "pool":
        workers = workers or 10
        pool = ThreadPoolExecutor(max_workers=workers)
        step = lambda g: simulate_pool(pool, g)
        cleanup = lambda: pool.shutdown(wait=True)
    elif args.strategy == "async":
        loop = asyncio.new_event_loop()
        step = lambda g: loop.run_until_complete(simulate_async(g))
        cleanup = loop.close
    else:
        sys.exit(f"unknown strategy {args.strategy}")

    times = []
    for generation in range(1, args.generations + 1):
        start = time.perf_counter()
        grid = step(grid)
        times.append(time.perf_counter() - start)
        if args.json:
            print(json.dumps({"generation": generation, "alive": grid.alive(), "seconds": times[-1]}))
    cleanup()
    summary = {
        "strategy": args.strategy, "height": height, "width": width, "cells": height * width,
        "generations": args.generations, "workers": workers, "latency_ms": LATENCY * 1000,
        "seconds_per_generation": statistics.median(times) if times else 0.0,
        "total_seconds": sum(times), "peak_threads": None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "alive": grid.alive(),
        "step_range": [min(times), max(times)] if times else None,
    }
    print(json.dumps(summary))


main()
