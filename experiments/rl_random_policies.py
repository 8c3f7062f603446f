"""The market as a PettingZoo environment, played by random policies for one episode.

    pip install -e ".[rl]"
    python experiments/rl_random_policies.py

Bring your own RL library instead of the random policies: the environment is a standard
PettingZoo ParallelEnv (market.games.env.MarketEnv; docs/GAMES.md, "Adaptive strategies").
"""

from market.games.env import MarketEnv

env = MarketEnv("openai_google_tpu", period=3)  # Google's withholding share and OpenAI's diversification
observations, infos = env.reset(seed=1)
totals = dict.fromkeys(env.agents, 0.0)
while env.agents:
    actions = {agent: env.action_space(agent).sample() for agent in env.agents}  # random policies
    observations, rewards, terminations, truncations, infos = env.step(actions)
    for agent, reward in rewards.items():
        totals[agent] += reward
env.close()
for agent, total in totals.items():
    player = env.players[agent]
    print(f"{agent}: {player.payoff} over the episode {total:,.1f} billion USD (lever {player.lever} of {player.agent})")
