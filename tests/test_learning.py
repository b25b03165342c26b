"""Learning tests of the reference baselines on a small synthetic controllable video.

The video (built here, 32x32 RGB, 3 stacked frames): a white square (the agent) moved by a
smooth 2-d action, ``p_{t+1} = p_t + 2 a_t``, on one fixed textured background (``clean``: the
same for every trajectory, as a DCS task's scene). In the ``distractors`` variant every
trajectory has its own texture (as DCS's background videos), which scrolls with a velocity
*correlated* with the action (``0.6 a_t + 0.8 noise``), plus two coloured squares with their own
random motion: most of the pixel change between frames is distractor motion that only partly
tracks the action.

Each method trains for a few hundred to ~1000 updates on CPU (one thread; the two longest fits
run in a background process, so the whole file measured 2.8 min wall on a shared 2-core machine)
and must pass thresholds picked from these measurements (seed 0, torch 2.13 CPU; MSE on the 4
held-out trajectories, constant predictor 0.162):

================================================  =========  ==========================  ==========
test                                              measured   threshold                   ratio
================================================  =========  ==========================  ==========
BC action MSE                                     0.044      < 0.5 x constant            0.27
IDM action MSE                                    0.047      < 0.5 x constant            0.29
LAPO probe (random features 0.138)                0.112      < 0.8 x const, 0.9 x rand   0.69, 0.81
LAOM probe (random features 0.142)                0.100      < 0.8 x const, 0.9 x rand   0.62, 0.71
LAPO chain (LAM -> latent BC -> decoder)          0.129      < 0.9 x constant            0.80
LAOM chain (20 epochs, no augmentation)           0.075      < 0.9 x constant            0.46
LAOM+sup chain, distractors (20 epochs)           0.095      < 0.9 x constant            0.59
distractors: LAOM+sup probe vs LAOM probe 0.102   0.040      < 0.6 x LAOM, 0.5 x const   0.40, 0.25
negative: chain, shuffled latent targets          0.162      > 0.9 x constant            1.00
negative: probe fitted on shuffled actions        0.163      > 0.8 x constant            1.00
LAPO FSQ option, fraction of codes used           0.98       > 0.5                       -
================================================  =========  ==========================  ==========

The probe is :mod:`dcsbench.probe`'s ridge with trajectory-grouped CV, fitted on the 16 train
trajectories (all their actions) and scored on the held-out ones; "random features" is the same
probe on the untrained model ``fit`` starts from (``init_untrained``).

What the scale changes (measured, see :data:`LONG` and :data:`CHAINS`): at 6 LAM epochs LAOM's
and LAOM+sup's chains stay at the constant's MSE and LAOM+sup does not beat LAOM (probe 0.13-0.16
for ``sup_coef`` 0.01-1.0 vs 0.113); at 20 epochs with ``sup_coef`` 0.1 both hold. LAOM's chain
with the authors' augmentations stays at the constant at 20 epochs too (0.170), so the clean-video
chain test trains LAOM without them.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import torch

import baselines
from baselines import nets
from baselines.common import TransitionSampler, fit_actor, fit_decoder
from dcsbench.agent import EnvSpec
from dcsbench.data import make_views_from_arrays
from dcsbench.probe import probe_mse

torch.set_num_threads(1)

CLEAN_CONTRAST, HALF_SIZE, RHO, SIGMA = 10.0, 0.16, 0.95, 0.15
SIZE, T, N_TRAIN, N_TEST, LABELED = 32, 100, 16, 4, (0, 1, 2, 3, 4, 5)
SPEC = {v: EnvSpec("synthetic", v, (SIZE, SIZE, 9), (SIZE, SIZE, 3), 3, 2) for v in ("clean", "distractors")}


# ------------------------------------------------------------------------------ the video


def _texture(rng: np.random.Generator, size: int, contrast: float = 40.0) -> np.ndarray:
    """A smooth periodic RGB texture (values around 90 +- contrast) that can scroll by rolling."""
    f = np.fft.fft2(rng.normal(size=(size, size, 3)), axes=(0, 1))
    k = np.fft.fftfreq(size)[:, None] ** 2 + np.fft.fftfreq(size)[None] ** 2
    tex = np.real(np.fft.ifft2(f * np.exp(-k * size * 6)[..., None], axes=(0, 1)))
    return np.clip(90 + contrast * (tex - tex.mean()) / (tex.std() + 1e-8), 0, 255)


def make_video(n_traj: int, length: int, distractors: bool, seed: int, size: int = SIZE,
               step: float = 2.0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(frames, actions)``: per trajectory ``(length, size, size, 3)`` uint8 and ``(length, 2)``
    float32 actions in ``[-1, 1]`` (AR(1), drifting back to the centre)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    half = size * HALF_SIZE

    def square(img, y, x, colour, wrap):
        dy, dx = yy - y, xx - x
        if wrap:
            dy, dx = (dy + size / 2) % size - size / 2, (dx + size / 2) % size - size / 2
        img[(np.abs(dy) < half) & (np.abs(dx) < half)] = colour

    frames, actions = [], []
    scene = _texture(rng, size, contrast=CLEAN_CONTRAST)
    for _ in range(n_traj):
        tex = _texture(rng, size) if distractors else scene
        act = np.zeros((length, 2), np.float32)
        pos = rng.uniform(size / 4, 3 * size / 4, 2)
        prev = rng.uniform(-1, 1, 2)
        bg, dpos, dvel = np.zeros(2), rng.uniform(0, size, (2, 2)), rng.uniform(-1, 1, (2, 2))
        out = np.empty((length, size, size, 3), np.uint8)
        for t in range(length):
            img = np.roll(tex, tuple(int(round(b)) for b in bg), axis=(0, 1)) if distractors else tex.copy()
            if distractors:
                for j, colour in enumerate(((230, 60, 60), (60, 90, 230))):
                    square(img, *dpos[j], colour, wrap=True)
            square(img, *pos, (250, 250, 250), wrap=False)
            out[t] = img.astype(np.uint8)
            a = np.clip(RHO * prev + SIGMA * rng.normal(size=2) - 0.03 * (pos - size / 2) / step, -1, 1)
            act[t], prev = a, a
            pos = np.clip(pos + step * a, half, size - half)
            bg += step * (0.6 * a + 0.8 * rng.normal(size=2))
            dvel = np.clip(0.8 * dvel + 0.45 * rng.normal(size=(2, 2)), -1, 1)
            dpos += step * dvel
        frames.append(out)
        actions.append(act)
    return frames, actions


class Data:
    """Train views (16 trajectories, 6 labeled) and 4 held-out labeled trajectories."""

    def __init__(self, variant: str) -> None:
        frames, actions = make_video(N_TRAIN + N_TEST, T, variant == "distractors", seed=0)
        self.spec = SPEC[variant]
        self.unlabeled, self.labeled = make_views_from_arrays(frames[:N_TRAIN], actions[:N_TRAIN], LABELED)
        _, self.train_all = make_views_from_arrays(frames[:N_TRAIN], actions[:N_TRAIN], range(N_TRAIN))
        _, self.test = make_views_from_arrays(frames[N_TRAIN:], actions[N_TRAIN:], range(N_TEST))

    @staticmethod
    def pairs(view) -> dict[str, np.ndarray]:
        """Every ``(o_t, o_{t+1}, a_t)`` of a labeled view, with the trajectory of each."""
        traj = np.repeat(np.arange(view.n_trajectories), T - 1)
        out = view.stacks_at(traj, np.tile(np.arange(T - 1), view.n_trajectories))
        return {**out, "traj": traj}

    def constant_mse(self) -> float:
        """MSE on the held-out pairs of the train-mean action (the constant predictor)."""
        a_fit, a_test = self.pairs(self.train_all)["action"], self.pairs(self.test)["action"]
        return float(((a_test - a_fit.mean(0)) ** 2).mean())


@pytest.fixture(scope="module")
def data():
    """Both variants of the video (built in ~1 s)."""
    return {"clean": Data("clean"), "distractors": Data("distractors")}


# ------------------------------------------------------------------------------ configs

#: Small networks and a few hundred updates (16 x 99 transitions: one epoch is ~50 updates).
COMMON = {"runtime.device": "cpu", "runtime.log_every": 10_000}
LAM = {"lam.encoder_scale": 1, "lam.num_res_blocks": 1, "lam.latent_dim": 32, "lam.batch_size": 32,
       "lam.lr": 1e-3, "lam.epochs": 6.0, "lam.warmup_epochs": 0.5, "lam.max_offset": 4,
       "lam.probe_batch_size": 16, "lam.probe_every": 8}
LAOM = {"lam.hidden_dim": 64, "lam.num_blocks": 2, "lam.target_tau": 0.01, "lam.labeled_batch_size": 16,
        "lam.aug_shift_px": 7.0}
ACTOR = {"bc.encoder_scale": 1, "bc.batch_size": 32, "bc.lr": 1e-3, "bc.epochs": 5.0, "bc.updates": 0}
DECODER = {"decoder.hidden_dim": 64, "decoder.batch_size": 64, "decoder.lr": 3e-3, "decoder.updates": 500}
CONFIGS = {
    "bc": {**COMMON, "bc.encoder_scale": 1, "bc.batch_size": 32, "bc.lr": 1e-3, "bc.updates": 250},
    "idm": {**COMMON, **ACTOR, "idm.encoder_scale": 1, "idm.num_res_blocks": 1, "idm.hidden_dim": 64,
            "idm.num_blocks": 2, "idm.batch_size": 32, "idm.lr": 1e-3, "idm.updates": 150},
    "lapo": {**COMMON, **LAM, **ACTOR, **DECODER},
    "laom": {**COMMON, **LAM, **LAOM, **ACTOR, **DECODER},
    "laom-sup": {**COMMON, **LAM, **LAOM, **ACTOR, **DECODER},
}

#: Longer stage-1 training for the LAOM chains and the supervision comparison: at the 6 epochs
#: above LAOM's latents are a large offset plus a ~1% varying part that latent BC does not recover
#: (chain = the constant's MSE); at 20 epochs (~1000 updates) they are not. ``sup_coef`` 0.1: the
#: paper's 0.01 was measured too weak for ~1000 updates at this size (probe 0.16 = constant at 6
#: epochs and 0.01-1.0; 0.054 at 12 epochs and 0.1; 0.040 at 20 epochs and 0.1).
LONG = {"lam.epochs": 20.0}
SUP = {**LONG, "lam.sup_coef": 0.1}
#: The LAOM chain on the clean video is trained without augmentation (``lam.augment: false``):
#: with the authors' independent per-view rotations up to 90 deg, LAOM's chain at this scale stays
#: at the constant (measured 0.170 / 0.148 with 3x more latent-BC updates; probe 0.097), without
#: them it learns (probe 0.052, chain 0.075). Augmentation is a distractor-robustness device; the
#: clean video has no distractors. LAOM+sup's chains keep the augmentations.
CHAINS = {"lapo": {}, "laom": {**LONG, "lam.augment": False}, "laom-sup": SUP}

#: Thresholds (ratios to the constant predictor's MSE, or between probes); measured values in
#: the module docstring's table.
ACT_VS_CONSTANT, PROBE_VS_CONSTANT, PROBE_VS_RANDOM, CHAIN, FSQ_USAGE = 0.5, 0.8, 0.9, 0.9, 0.5
SUP_VS_LAOM, SUP_VS_CONSTANT = 0.6, 0.5

_FITTED: dict = {}


def fitted(method: str, d: Data, stage1_only: bool = False, **extra):
    """An agent of ``method`` fitted on ``d`` (cached per arguments within the module)."""
    key = (method, d.spec.setting, stage1_only, repr(sorted(extra.items())))
    if key not in _FITTED:
        agent = baselines.make_agent(method, "tiny", **{**CONFIGS[method], **extra})
        t0 = time.process_time()
        if stage1_only:
            rng, logger = agent._start(d.spec, 0, None)
            agent.fit_lam(TransitionSampler(d.unlabeled, agent.runtime),
                          TransitionSampler(d.labeled, agent.runtime, labeled=True), d.spec, 0, rng, logger)
        else:
            agent.fit(d.unlabeled, d.labeled, d.spec, budget=len(LABELED), seed=0, logger=None)
        print(f"\n[fit] {key}: {time.process_time() - t0:.1f} s CPU")
        _FITTED[key] = agent
    return _FITTED[key]


def _long_fit(method: str, variant: str) -> dict:
    """Fit ``method``'s full chain with :data:`CHAINS` settings on ``variant`` (run in the
    background process of :func:`long_fits`); its held-out probe and chain MSE."""
    d = Data(variant)
    agent = fitted(method, d, **CHAINS[method])
    return {"probe": probe(agent.latent_actions, d), "chain": action_mse(agent, d)}


@pytest.fixture(scope="module", autouse=True)
def long_fits():
    """The two longest fits (~110 s CPU together) run in one spawned background process while
    this one runs the other tests, so that the file takes ~2 min on 2 cores, not ~4 on one.
    Maps ``(method, variant)`` to a future of :func:`_long_fit`'s dict."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        yield {key: pool.submit(_long_fit, *key) for key in (("laom-sup", "distractors"), ("laom", "clean"))}


def action_mse(agent, d: Data) -> float:
    """The agent's action MSE on every held-out frame."""
    p = d.pairs(d.test)
    return float(((agent.act(p["obs"]) - p["action"]) ** 2).mean())


def probe(latent_fn, d: Data, shuffle: bool = False) -> float:
    """Probe MSE: ridge latent -> action fitted on the 16 train trajectories (all actions),
    scored on the 4 held-out ones. ``shuffle`` permutes the fitting actions (a negative control)."""
    fit, test = d.pairs(d.train_all), d.pairs(d.test)
    a_fit = fit["action"][np.random.default_rng(0).permutation(len(fit["action"]))] if shuffle else fit["action"]
    return probe_mse(latent_fn(fit["obs"], fit["next_obs"]), a_fit, fit["traj"],
                     latent_fn(test["obs"], test["next_obs"]), test["action"])


def random_probe(method: str, d: Data) -> float:
    """The same probe on the untrained model that ``fit`` starts from (``init_untrained``)."""
    agent = baselines.make_agent(method, "tiny", **CONFIGS[method])
    assert agent.init_untrained(d.spec, 0)
    return probe(agent.latent_actions, d)


# ------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("method", ["bc", "idm"])
def test_bc_and_idm_predict_held_out_actions(method, data):
    d = data["clean"]
    mse, const = action_mse(fitted(method, d), d), d.constant_mse()
    print(f"{method}: held-out action MSE {mse:.4f}, constant {const:.4f}")
    assert mse < ACT_VS_CONSTANT * const


@pytest.mark.parametrize("method", ["lapo", "laom"])
def test_latent_actions_probe_well_without_distractors(method, data):
    d = data["clean"]
    trained = probe(fitted(method, d, stage1_only=method != "lapo").latent_actions, d)
    rand, const = random_probe(method, d), d.constant_mse()
    print(f"{method}: probe {trained:.4f}, random features {rand:.4f}, constant {const:.4f}")
    assert trained < PROBE_VS_CONSTANT * const
    assert trained < PROBE_VS_RANDOM * rand


@pytest.mark.parametrize("method,variant", [("lapo", "clean"), ("laom", "clean"), ("laom-sup", "distractors")])
def test_three_stage_chain_predicts_held_out_actions(method, variant, data, long_fits):
    """Each latent method's LAM -> latent BC -> decoder (``act``) on held-out frames (settings:
    :data:`CHAINS`). LAOM+sup's chain is checked where it matters, under distractors."""
    d = data[variant]
    if method == "lapo":
        mse = action_mse(fitted(method, d), d)
    else:
        mse = long_fits[(method, variant)].result()["chain"]
    const = d.constant_mse()
    print(f"{method} chain ({variant}): held-out action MSE {mse:.4f}, constant {const:.4f}")
    assert mse < CHAIN * const


def test_supervision_beats_laom_under_distractors(data, long_fits):
    """The paper's central claim at toy scale: with action-correlated distractors (scrolling
    background, two randomly moving squares, a new texture per trajectory), LAOM+sup's latents
    probe much better than LAOM's, trained for the same updates."""
    d = data["distractors"]
    sup = long_fits[("laom-sup", "distractors")].result()["probe"]
    plain = probe(fitted("laom", d, stage1_only=True, **LONG).latent_actions, d)
    const = d.constant_mse()
    print(f"distractors: laom-sup probe {sup:.4f}, laom probe {plain:.4f}, constant {const:.4f}")
    assert sup < SUP_VS_LAOM * plain
    assert sup < SUP_VS_CONSTANT * const


def test_chain_with_shuffled_latent_targets_fails(data):
    """Negative control: the LAPO chain of the test above, with latent BC regressing the latents
    of *other* (shuffled) transitions, must fail the chain threshold."""
    d = data["clean"]
    agent = fitted("lapo", d)
    broken = baselines.make_agent("lapo", "tiny", **CONFIGS["lapo"])
    rng, _ = broken._start(d.spec, 0, None)
    broken.nets["lam"].load_state_dict(agent.nets["lam"].state_dict())
    lam, rt = broken.nets["lam"].eval(), broken.runtime
    unl, lab = TransitionSampler(d.unlabeled, rt), TransitionSampler(d.labeled, rt, labeled=True)
    gen = torch.Generator().manual_seed(0)

    def shuffled(b):
        z = broken.lam_latents(lam, rt.to_input(b["obs"]), rt.to_input(b["next_obs"]))
        return z[torch.randperm(len(z), generator=gen)]

    fit_actor("bc", broken.nets["actor"], unl, ("obs", "next_obs"), shuffled, broken.cfg.bc, rng, rt, broken_log)
    fit_decoder(broken.nets["decoder"], broken.nets["actor"], lab, broken.cfg.decoder, rng, rt, broken_log)
    mse, const = action_mse(broken, d), d.constant_mse()
    print(f"shuffled latent targets: held-out action MSE {mse:.4f}, constant {const:.4f}")
    assert mse > CHAIN * const


def test_probe_on_shuffled_actions_fails(data):
    """Negative control: the trained LAOM latents, probed against permuted actions."""
    d = data["clean"]
    mse = probe(fitted("laom", d, stage1_only=True).latent_actions, d, shuffle=True)
    print(f"probe on shuffled actions: {mse:.4f}, constant {d.constant_mse():.4f}")
    assert mse > PROBE_VS_CONSTANT * d.constant_mse()


def test_fsq_option_uses_most_of_its_codes(data):
    d = data["clean"]
    agent = fitted("lapo", d, stage1_only=True, **{"lam.quantize": "fsq", "lam.fsq_levels": [4, 4],
                                                   "lam.epochs": 1.0})
    p = d.pairs(d.train_all)
    lam, rt = agent.nets["lam"].eval(), agent.runtime
    with torch.no_grad():
        _, codes = lam.latent(rt.to_input(p["obs"]), rt.to_input(p["next_obs"]), with_codes=True)
    usage = nets.code_usage(codes, 16)
    print(f"fsq: {usage:.3f} of the codes used; probe {probe(agent.latent_actions, d):.4f}")
    assert usage > FSQ_USAGE


class _NullLog:
    def log(self, metrics, step=None):
        pass


broken_log = _NullLog()
