"""The timing process of ``market bench --against``, one per checkout: it imports ``market`` from
the checkout it runs in, says ``ready``, then times each request it reads on stdin and prints the
seconds.

Started as ``python -c <the text of this file> runs|step`` in the checkout's folder, so it runs the
same in any checkout, an old one too (one whose benchmark is the single module ``market/bench.py``,
or has none): it uses only ``market.run``, ``market.load_scenario`` and ``MarketModel``.
"""

import sys
import time

import market


def time_runs() -> None:
    """Requests ``scenario seed steps``: seconds of one ``market.run``."""
    market.run("baseline", seed=0, steps=2)  # warm up: imports and first calls
    print("ready", flush=True)
    for line in sys.stdin:
        scenario, seed, steps = line.split()
        started = time.perf_counter()
        market.run(scenario, seed=int(seed), steps=int(steps))
        print(time.perf_counter() - started, flush=True)


def time_steps() -> None:
    """Requests ``seed labs steps``: seconds per step of a baseline model with that many labs."""
    from market.model import MarketModel

    named = len(market.load_scenario("baseline").labs)
    print("ready", flush=True)
    for line in sys.stdin:
        seed, labs, steps = (int(x) for x in line.split())
        sc = market.load_scenario("baseline", {"long_tail.count": labs - named}, steps=1 + steps)
        model = MarketModel(sc, seed=seed)
        model.step()  # warm-up month: the standing book of contracts is signed
        started = time.perf_counter()
        for _ in range(steps):
            model.step()
        print((time.perf_counter() - started) / steps, flush=True)


if __name__ == "__main__":
    {"runs": time_runs, "step": time_steps}[sys.argv[1]]()
