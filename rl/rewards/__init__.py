"""Pure, batched reward functions for RL, each calling the evaluation scorers (the metric is the reward).

``get_reward(name)`` returns a registered function (``reward_names()`` lists them) or one given by import path;
``score_labelled`` routes each sample to the reward its label names and adds weighted extra components.
"""

from rl.rewards.combine import RewardBreakdown, score_labelled
from rl.rewards.lookup import get_reward, reward_names
from rl.rewards.registry import register

__all__ = ["RewardBreakdown", "get_reward", "register", "reward_names", "score_labelled"]
