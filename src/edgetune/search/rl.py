"""The second seed's agent (after AMC): DDPG walks the network one prunable layer (or group) at a
time, sees 13 features of it, and picks its pruning ratio; at the end of the walk the whole
set of ratios is one ordinary trial of the study, and its outcome is the episode's reward.

Stable-Baselines3's DDPG and a Gymnasium environment do the learning; the agent's weights and
replay buffer are saved after every episode, so a resumed study resumes the agent too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import optuna
from optuna.trial import TrialState
from stable_baselines3 import DDPG
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import NormalActionNoise

from edgetune.errors import ConfigError
from edgetune.search.base import RunTrial, SearchContext, Strategy, TrialOutcome

FEATURES = ("index", "type", "in_channels", "out_channels", "height", "width", "stride", "kernel", "weights",
            "macs", "previous_action", "macs_reduced", "macs_remaining")
PENALTY = -50.0  # the second seed's flat reward for a broken threshold or budget


class PruningEnv(gym.Env):
    """One step per searched parameter; the reward arrives when the last ratio is chosen."""

    metadata: ClassVar[dict[str, Any]] = {}

    def __init__(self, layers: list[dict[str, Any]], bounds: list[tuple[float, float]],
                 run_episode: Callable[[dict[str, float]], float]) -> None:
        self.layers, self.bounds, self.run_episode = layers, bounds, run_episode
        self.observation_space = gym.spaces.Box(0.0, 1.0, (len(FEATURES),), dtype=np.float32)
        self.action_space = gym.spaces.Box(0.0, 1.0, (1,), dtype=np.float32)
        table = np.array([[float(layer.get(f, 0.0)) for f in FEATURES[:10]] for layer in layers])
        self.scale = np.maximum(table.max(axis=0), 1e-9)
        self.static = table / self.scale
        self.total_macs = float(table[:, 9].sum()) or 1.0
        self.step_i, self.actions = 0, []

    def _obs(self) -> np.ndarray:
        i = self.step_i
        reduced = sum(a * layer.get("macs", 0.0) for a, layer in zip(self.actions, self.layers, strict=False))
        remaining = sum(layer.get("macs", 0.0) for layer in self.layers[i + 1:])
        prev = self.actions[-1] if self.actions else 0.0
        return np.concatenate([self.static[min(i, len(self.layers) - 1)],
                               [prev, reduced / self.total_macs, remaining / self.total_macs]]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.step_i, self.actions = 0, []
        return self._obs(), {}

    def step(self, action):
        lo, hi = self.bounds[self.step_i]
        self.actions.append(float(lo + float(np.clip(action[0], 0.0, 1.0)) * (hi - lo)))
        self.step_i += 1
        if self.step_i < len(self.layers):
            return self._obs(), 0.0, False, False, {}
        params = {layer["param"]: a for layer, a in zip(self.layers, self.actions, strict=True)}
        reward = float(self.run_episode(params))
        return self._obs(), reward, True, False, {"params": params}


class _Ddpg(DDPG):
    """SB3's DDPG with the seed's separate actor and critic learning rates (SB3 sets one)."""

    actor_lr: float = 1e-4

    def _update_learning_rate(self, optimizers) -> None:
        for group in self.actor.optimizer.param_groups:
            group["lr"] = self.actor_lr
        for group in self.critic.optimizer.param_groups:
            group["lr"] = self.lr_schedule(self._current_progress_remaining)


class _EpisodeEnd(BaseCallback):
    """Decay the exploration noise after warm-up, save the agent, stop when the study is full."""

    def __init__(self, done: Callable[[], bool], save: Callable[[], None], decay: float, warmup_steps: int) -> None:
        super().__init__()
        self.done, self.save, self.decay, self.warmup_steps = done, save, decay, warmup_steps

    def _on_step(self) -> bool:
        if any(self.locals.get("dones", [])):
            if self.num_timesteps > self.warmup_steps and self.model.action_noise is not None:
                self.model.action_noise._sigma *= self.decay
            self.save()
            return not self.done()
        return True


class DdpgAgent(Strategy):
    name = "rl"
    multi_objective = False

    def sampler(self, ctx: SearchContext) -> optuna.samplers.BaseSampler:
        # The agent fixes every searched value through enqueued trials; this only fills gaps.
        return optuna.samplers.RandomSampler(seed=ctx.seed)

    def drive(self, ctx: SearchContext, run_trial: RunTrial, done: Callable[[], bool]) -> None:
        if not ctx.layers:
            raise ConfigError("method 'rl' needs pruning ratios to choose: give pruner parameters, or "
                              "space: per-layer", source=ctx.source, key="method")
        if ctx.protocol_reward is None:
            raise ConfigError("method 'rl' needs a reward: give a protocol or one objective", source=ctx.source)
        spec = ctx.sweep.rl
        bounds = [(float(layer["min"]), float(layer["max"])) for layer in ctx.layers]

        def run_episode(params: dict[str, float]) -> float:
            outcome: TrialOutcome = run_trial(params)
            if outcome.state is not TrialState.COMPLETE or not outcome.feasible:
                return PENALTY
            return float(ctx.protocol_reward(outcome))  # type: ignore[misc]

        env = PruningEnv(ctx.layers, bounds, run_episode)
        n = len(ctx.layers)
        warmup_steps = spec.warmup_episodes * n
        folder = (ctx.run_dir or Path(".")) / "rl-agent"
        folder.mkdir(parents=True, exist_ok=True)
        model_path, buffer_path = folder / "ddpg.zip", folder / "replay.pkl"
        noise = NormalActionNoise(mean=np.zeros(1), sigma=np.full(1, spec.noise_sigma))
        if model_path.is_file():
            model = _Ddpg.load(model_path, env=env, device="cpu")
            if buffer_path.is_file():
                model.load_replay_buffer(buffer_path)
        else:
            model = _Ddpg(
                "MlpPolicy", env, learning_rate=spec.critic_lr, learning_starts=warmup_steps,
                batch_size=spec.batch_size, tau=spec.tau, gamma=1.0, train_freq=(1, "episode"), gradient_steps=spec.updates_per_episode,
                action_noise=noise, policy_kwargs={"net_arch": {"pi": list(spec.hidden), "qf": list(spec.hidden)}},
                seed=ctx.seed, device="cpu", verbose=0,
            )
        model.actor_lr = spec.actor_lr

        def save() -> None:
            tmp = folder / "ddpg.tmp.zip"
            model.save(tmp)
            tmp.replace(model_path)
            model.save_replay_buffer(folder / "replay.tmp.pkl")
            (folder / "replay.tmp.pkl").replace(buffer_path)

        callback = _EpisodeEnd(done, save, spec.noise_decay, warmup_steps)
        while not done():
            model.learn(total_timesteps=n * 10_000, callback=callback, reset_num_timesteps=False)
