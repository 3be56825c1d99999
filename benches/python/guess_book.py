"""The book's asyncio number-guessing server and client (Effective Python, item 61).

Run: python3 benches/python/guess_book.py PORT          (the server)
     python3 benches/python/guess_book.py client PORT   (the client: prints its lines)
The server is the book's AsyncSession and run_async_server, unchanged in behaviour:
it prints `Server: N is DECISION` for every report, and an unknown command ends the
session with an exception, as in the book. It is the baseline for `concur guess load`,
and both halves check that concur speaks the book's protocol.
"""

import asyncio
import contextlib
import math
import random
import sys

WARMER, COLDER, UNSURE, CORRECT = "Warmer", "Colder", "Unsure", "Correct"


class UnknownCommandError(Exception):
    pass


class AsyncSession:
    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self._clear_state(None, None)

    def _clear_state(self, lower, upper):
        self.lower = lower
        self.upper = upper
        self.secret = None
        self.guesses = []

    async def send(self, command):
        line = command + "\n"
        data = line.encode()
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self):
        line = await self.reader.readline()
        if not line:
            raise EOFError("Connection closed")
        return line[:-1].decode()

    async def loop(self):
        while command := await self.receive():
            parts = command.split(" ")
            if parts[0] == "PARAMS":
                self.set_params(parts[1:])
            elif parts[0] == "NUMBER":
                await self.send_number()
            elif parts[0] == "REPORT":
                self.receive_report(parts[1])
            else:
                raise UnknownCommandError(command)

    def set_params(self, parts):
        assert len(parts) == 2
        lower = int(parts[0])
        upper = int(parts[1])
        self._clear_state(lower, upper)

    def next_guess(self):
        if self.secret is not None:
            return self.secret
        while True:
            guess = random.randint(self.lower, self.upper)
            if guess not in self.guesses:
                return guess

    async def send_number(self):
        guess = self.next_guess()
        self.guesses.append(guess)
        await self.send(format(guess))

    def receive_report(self, decision):
        last = self.guesses[-1]
        if decision == CORRECT:
            self.secret = last
        print(f"Server: {last} is {decision}")


async def handle_async_connection(reader, writer):
    session = AsyncSession(reader, writer)
    try:
        await session.loop()
    except EOFError:
        pass


async def run_async_server(address):
    server = await asyncio.start_server(handle_async_connection, *address, backlog=4096)
    async with server:
        await server.serve_forever()


class AsyncClient:
    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self._clear_state()

    def _clear_state(self):
        self.secret = None
        self.last_distance = None

    async def send(self, command):
        self.writer.write((command + "\n").encode())
        await self.writer.drain()

    async def receive(self):
        line = await self.reader.readline()
        if not line:
            raise EOFError("Connection closed")
        return line[:-1].decode()

    @contextlib.asynccontextmanager
    async def session(self, lower, upper, secret):
        self.secret = secret
        await self.send(f"PARAMS {lower} {upper}")
        try:
            yield
        finally:
            self._clear_state()
            await self.send("PARAMS 0 -1")

    async def request_numbers(self, count):
        for _ in range(count):
            await self.send("NUMBER")
            data = await self.receive()
            yield int(data)
            if self.last_distance == 0:
                return

    async def report_outcome(self, number):
        new_distance = math.fabs(number - self.secret)
        decision = UNSURE
        if new_distance == 0:
            decision = CORRECT
        elif self.last_distance is None:
            pass
        elif new_distance < self.last_distance:
            decision = WARMER
        elif new_distance > self.last_distance:
            decision = COLDER
        self.last_distance = new_distance
        await self.send(f"REPORT {decision}")
        return decision


async def run_async_client(address):
    streams = await asyncio.open_connection(*address)
    client = AsyncClient(*streams)
    async with client.session(1, 5, 3):
        results = [(x, await client.report_outcome(x)) async for x in client.request_numbers(5)]
    async with client.session(10, 15, 12):
        async for number in client.request_numbers(5):
            outcome = await client.report_outcome(number)
            results.append((number, outcome))
    _, writer = streams
    writer.close()
    await writer.wait_closed()
    return results


if __name__ == "__main__":
    if sys.argv[1] == "client":
        for number, outcome in asyncio.run(run_async_client(("127.0.0.1", int(sys.argv[2])))):
            print(f"Client: {number} is {outcome}")
    else:
        asyncio.run(run_async_server(("127.0.0.1", int(sys.argv[1]))))
