"""Item 64's program: the book's slow gcd on its ten pairs, serially, with a
ThreadPoolExecutor and with a ProcessPoolExecutor (two workers each, as in the book).

Prints one JSON object with the median seconds of each (`concur gcd bench --python`
runs this as the same-machine baseline).
"""

import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor


def gcd(pair):
    a, b = pair
    low = min(a, b)
    for i in range(low, 0, -1):
        if a % i == 0 and b % i == 0:
            return i
    assert False, 'Not reachable'


NUMBERS = [
    (1963309, 2265973), (2030677, 3814172), (1551645, 2229620),
    (2039045, 2020802), (1823712, 1924928), (2293129, 1020491),
    (1281238, 2273782), (3823812, 4237281), (3812741, 4729139),
    (1292391, 2123811),
]


def timed(run, repeats):
    times = []
    results = None
    for _ in range(repeats):
        start = time.perf_counter()
        results = run()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2], results


def serial():
    return list(map(gcd, NUMBERS))


def threads():
    # The book creates the pool inside the timed region; so does this.
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(gcd, NUMBERS))


def processes():
    with ProcessPoolExecutor(max_workers=2) as pool:
        return list(pool.map(gcd, NUMBERS))


if __name__ == '__main__':
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    report = {'python': sys.version.split()[0]}
    expected = None
    for name, run in [('serial', serial), ('threads', threads), ('processes', processes)]:
        seconds, results = timed(run, repeats)
        if expected is None:
            expected = results
        elif results != expected:
            sys.exit(f'{name} gave {results}, serial gave {expected}')
        report[f'{name}_seconds'] = seconds
    report['results'] = expected
    print(json.dumps(report))
