"""Strategic choices as an empirical game (docs/GAMES.md).

    >>> import market
    >>> result = market.game("experiments/withholding_game.toml", workers=2)   # doctest: +SKIP
    >>> print(result.summary())                                                 # doctest: +SKIP

A game file names a base scenario, players (agents or groups of agents), each player's strategies
as dotted overrides, and each player's payoff (:data:`PAYOFFS`); :func:`game` estimates every
profile's payoffs on the sweep runner with common random numbers and finds the equilibria with
their regret and confidence (:mod:`market.games.equilibrium`).
"""

from market.games.estimate import GameResult, analyse, game
from market.games.payoffs import PAYOFFS, Payoff
from market.games.spec import Game, GameError, Player, load_game

__all__ = ["PAYOFFS", "Game", "GameError", "GameResult", "Payoff", "Player", "analyse", "game",
           "load_game"]
