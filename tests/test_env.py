"""The PettingZoo environment (the optional rl extra): PettingZoo's own API test, reproducibility,
and rewards that are the players' flows."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pettingzoo")

from pettingzoo.test import parallel_api_test  # noqa: E402

from market.games.env import EnvPlayer, MarketEnv  # noqa: E402


def test_the_environment_passes_pettingzoos_api_test() -> None:
    parallel_api_test(MarketEnv("openai_google_tpu", steps=12, period=3), num_cycles=10)


def _episode(seed: int, actions: list[dict[str, int]]) -> list[dict[str, float]]:
    env = MarketEnv("openai_google_tpu", steps=9, period=3)
    env.reset(seed=seed)
    out = []
    for a in actions:
        _, rewards, _, truncations, _ = env.step(a)
        out.append(rewards)
    assert all(truncations.values()) and env.agents == []
    return out


def test_same_seed_and_actions_give_the_same_rewards() -> None:
    actions = [{"google": 4, "openai": 0}, {"google": 0, "openai": 2}, {"google": 2, "openai": 4}]
    assert _episode(1, actions) == _episode(1, actions)
    assert _episode(1, actions) != _episode(2, actions)
    # the actions matter: opening the top tier instead of withholding it changes Google's reward
    assert _episode(1, [{"google": 0, "openai": 0}] * 3) != _episode(1, [{"google": 4, "openai": 0}] * 3)


def test_observations_hold_the_vendor_shares_and_the_last_reward() -> None:
    env = MarketEnv("openai_google_tpu", steps=6, period=3)
    obs, _ = env.reset(seed=0)
    assert obs["google"].shape == (3 + len(env.vendor_ids),)
    obs, rewards, *_ = env.step({"google": 1, "openai": 1})
    shares = obs["google"][1:1 + len(env.vendor_ids)]
    assert shares.sum() == pytest.approx(1.0, rel=1e-5) and np.all(shares >= 0)
    assert obs["google"][-2] == pytest.approx(rewards["google"], rel=1e-5)
    assert obs["openai"][-1] == pytest.approx(0.5)  # the diversification it played
    assert obs["google"][0] == pytest.approx(0.5)  # half the run elapsed


def test_a_bad_player_is_named() -> None:
    with pytest.raises(ValueError, match="from 0.0 to 1.0"):
        MarketEnv("openai_google_tpu", [EnvPlayer("g", ("gcp",), "withholding_share", "gcp", (2.0,))], steps=3)
