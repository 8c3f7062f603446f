"""Strategies that co-evolve inside one run: Google Cloud revises its withholding share and OpenAI
its diversification every quarter, each by a learning rule on the reward it realised.

    python experiments/adaptive_withholding.py          # writes outputs/adaptive_withholding.png

(market.games.adaptive; docs/GAMES.md, "Adaptive strategies".)
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import seaborn as sns

from market.games.adaptive import Learner, run_adaptive

learners = [
    Learner("google", ["google", "gcp", "deepmind"], "withholding_share", "gcp", [0.0, 0.5, 1.0], "ucb1"),
    Learner("openai", ["openai"], "diversification", "openai", [0.0, 0.5, 1.0, 2.0], "epsilon_greedy",
            payoff="utility"),
]
levers = run_adaptive("openai_google_tpu", learners, seed=1, period=3).tables["levers"]
print(levers)
fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True, layout="constrained")
for ax, learner in zip(axes, learners, strict=True):
    rows = levers.filter(player=learner.player)
    sns.lineplot(x=rows["step"].to_list(), y=rows["value"].to_list(), drawstyle="steps-post", marker="o", ax=ax)
    ax.set_ylabel(f"{learner.player}:\n{learner.lever}")
    ax.set_title(f"{learner.player} ({learner.rule}, reward: {learner.payoff})", fontsize=9, loc="left")
axes[-1].set_xlabel("month")
fig.suptitle("Levers revised each quarter by learning rules, one run of the seed event")
out = Path("outputs") / "adaptive_withholding.png"
out.parent.mkdir(exist_ok=True)
fig.savefig(out, dpi=120)
print(f"figure: {out}")
