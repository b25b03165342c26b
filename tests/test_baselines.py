"""Tests of the reference baselines (baselines/): configs, parameter counts, sampling semantics,
augmentations, and a few-update fit + act smoke test of every method on an in-memory tiny view."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import baselines
from baselines import nets
from baselines.augment import Augmenter
from baselines.common import LinearProbe, Runtime, RuntimeConfig, TransitionSampler, from_dict, linear_with_warmup
from dcsbench.agent import EnvSpec
from dcsbench.data import make_views_from_arrays

torch.set_num_threads(1)

SPEC = EnvSpec("cheetah-run", "distractors", (64, 64, 9), (64, 64, 3), 3, 6)

#: Few-update overrides per config section (same algorithm as `tiny`, seconds instead of minutes).
FAST = {"lam.epochs": 0.25, "lam.warmup_epochs": 0.05, "lam.max_offset": 4, "lam.batch_size": 16,
        "lam.probe_batch_size": 8, "lam.labeled_batch_size": 8, "bc.epochs": 0.1, "bc.updates": 0,
        "bc.batch_size": 16, "idm.updates": 4, "idm.batch_size": 16, "decoder.updates": 4,
        "decoder.batch_size": 16, "runtime.device": "cpu"}


def fast_overrides(method: str, **extra) -> dict:
    sections = baselines.load_config(method, "tiny")
    out = {k: v for k, v in FAST.items()
           if k.split(".")[0] in sections and k.split(".")[1] in sections[k.split(".")[0]]}
    if method == "bc":
        out["bc.updates"] = 4
    out.update(extra)
    return out


@pytest.fixture(scope="module")
def views():
    """4 trajectories x 40 frames of smooth random video (so frame stacks differ), 2 labeled."""
    rng = np.random.default_rng(0)
    frames, actions = [], []
    for _ in range(4):
        base = rng.integers(0, 255, (64, 64, 3)).astype(np.int16)
        steps = rng.integers(-6, 7, (40, 1, 1, 3))
        frames.append(np.clip(base[None] + np.cumsum(steps, 0), 0, 255).astype(np.uint8))
        actions.append(rng.uniform(-1, 1, (40, 6)).astype(np.float32))
    return make_views_from_arrays(frames, actions, [1, 3])


# ------------------------------------------------------------------------------ configs


@pytest.mark.parametrize("method", sorted(baselines.BASELINES))
@pytest.mark.parametrize("preset", baselines.PRESETS)
def test_every_preset_loads_and_builds_an_agent(method, preset):
    cfg = baselines.load_config(method, preset)
    agent = baselines.agent_class(method)(**cfg)
    assert agent.name == method
    assert agent.config == cfg


def test_paper_configs_hold_the_reference_values():
    laom = baselines.load_config("laom", "paper")
    assert (laom["lam"]["batch_size"], laom["lam"]["lr"], laom["lam"]["epochs"]) == (512, 1e-4, 10)
    assert (laom["lam"]["encoder_scale"], laom["lam"]["latent_dim"], laom["lam"]["max_offset"]) == (6, 8192, 10)
    assert laom["lam"]["target_tau"] == 0.001 and laom["lam"]["augment"] and not laom["lam"]["supervised"]
    assert laom["bc"]["encoder_scale"] == 32 and laom["decoder"] == {
        "hidden_dim": 256, "batch_size": 512, "lr": 3e-4, "updates": 2500}
    sup = baselines.load_config("laom-sup", "paper")["lam"]
    assert sup["supervised"] and sup["labeled_batch_size"] == 128
    assert sup["sup_coef"] == 0.01 and sup["sup_coef_by_task"]["cheetah-run"] == 0.001
    assert baselines.load_config("lapo", "paper")["lam"]["quantize"] == "none"  # authors' LAPO
    for method in ("laom", "laom-sup"):  # the authors' final configs
        lam = baselines.load_config(method, "paper")["lam"]
        assert lam["target"] == "ema" and lam["target_tau"] == 0.001 and not lam["encoder_norm_out"]
        assert (lam["aug_shift_px"], lam["aug_rotate_deg"], lam["aug_perspective"]) == (14, 90, 0.5)
    assert baselines.load_config("idm", "paper")["idm"]["encoder_scale"] == 12
    assert baselines.load_config("bc", "paper")["bc"]["updates"] == 10000


def test_overrides_strings_dicts_and_errors():
    cfg = baselines.load_config("laom", "tiny", ["lam.lr=3e-4", "bc.epochs=2", "runtime.device=cpu"])
    assert cfg["lam"]["lr"] == 3e-4 and cfg["bc"]["epochs"] == 2.0 and cfg["runtime"]["device"] == "cpu"
    cfg = baselines.load_config("laom", "tiny", {"lam": {"latent_dim": 32}, "decoder.updates": 7})
    assert cfg["lam"]["latent_dim"] == 32 and cfg["decoder"]["updates"] == 7
    with pytest.raises(ValueError, match="Did you mean 'lr'"):
        baselines.load_config("laom", "tiny", ["lam.lrr=1"])
    with pytest.raises(ValueError, match="Valid methods"):
        baselines.load_config("lamo")
    with pytest.raises(ValueError, match="Valid presets"):
        baselines.load_config("bc", "huge")
    with pytest.raises(ValueError, match="expected an integer"):
        baselines.load_config("bc", "tiny", ["bc.updates=abc"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        baselines.load_config("bc", "tiny", ["bc.updates"])
    with pytest.raises(ValueError, match="lam.fdm_target"):
        baselines.make_agent("laom", "tiny", **{"lam.fdm_target": "past"})


# ------------------------------------------------------------------------------ parameter counts

#: The paper's totals (millions) and what we compare them to (see RESULTS-baselines.md).
PAPER_PARAMS = {"lapo": 211.8, "laom": 192.3, "laom-sup": 192.5, "idm": 192.3, "bc": 107.5}


def paper_main_network(method: str) -> torch.nn.Module:
    """The network whose size the paper reports, built on the meta device (no memory)."""
    from baselines import lapo, laom
    cfg = from_dict(baselines.agent_class(method).Config, baselines.load_config(method, "paper"))
    with torch.device("meta"):
        if method in ("laom", "laom-sup"):
            return laom.LAOMModel(9, 6, cfg.lam)
        if method == "lapo":
            return lapo.LAPOModel(9, cfg.lam)
        if method == "idm":
            return nets.InverseDynamics(9, cfg.idm.encoder_scale, cfg.idm.hidden_dim, 6)
        # The paper's 107.5M "BC" equals a scale-32 actor with an 8192-d (latent) head; the BC
        # actor with a 6-d action head has 99.15M (the head is 8.4M smaller).
        return nets.Actor(9, cfg.bc.encoder_scale, 8192)


@pytest.mark.parametrize("method", sorted(PAPER_PARAMS))
def test_paper_parameter_counts_match_the_paper(method):
    n = nets.count_parameters(paper_main_network(method)) / 1e6
    assert abs(n - PAPER_PARAMS[method]) / PAPER_PARAMS[method] < 0.01, (method, n)


def test_bc_actor_parameter_count():
    with torch.device("meta"):
        n = nets.count_parameters(nets.Actor(9, 32, 6))
    assert 99.0e6 < n < 99.3e6


# ------------------------------------------------------------------------------ pieces


def test_sampler_stacks_match_the_view_semantics(views):
    unlabeled, labeled = views
    rt = Runtime(RuntimeConfig(device="cpu"))
    sampler = TransitionSampler(labeled, rt, labeled=True)
    batch = next(labeled.iter_stacks(50))  # trajectory 0 of the labeled view, t = 0..38, then traj 1
    traj, t = batch["index"][:, 0], batch["index"][:, 1]
    np.testing.assert_array_equal(sampler.stacks(traj, t).numpy(), batch["obs"])
    np.testing.assert_array_equal(sampler.stacks(traj, t + 1).numpy(), batch["next_obs"])
    rng = np.random.default_rng(0)
    b = sampler.sample(256, rng, max_offset=5, keys=("obs", "future_obs", "action", "offset"))
    tr, tt = b["index"][:, 0], b["index"][:, 1]
    k = b["offset"].numpy()
    assert k.min() >= 1 and k.max() <= 5 and (tt + k <= 39).all()
    np.testing.assert_array_equal(b["future_obs"].numpy(), sampler.stacks(tr, tt + k).numpy())
    expect = np.stack([labeled.actions(i)[j] for i, j in zip(tr, tt)])
    np.testing.assert_array_equal(b["action"].numpy(), expect)


def test_prefetched_stream_gives_the_same_batches(views):
    unlabeled, _ = views
    sampler = TransitionSampler(unlabeled, Runtime(RuntimeConfig(device="cpu")))
    keys = ("obs", "next_obs", "future_obs")
    plain = sampler.stream(8, np.random.default_rng(5), 3, keys, prefetch=False)
    threaded = sampler.stream(8, np.random.default_rng(5), 3, keys, prefetch=True)
    for _ in range(4):
        a, b = next(plain), next(threaded)
        for key in keys:
            assert torch.equal(a[key], b[key])
    threaded.close()


def test_augmenter_draws_the_authors_choices_per_image_and_shares_them_across_frames():
    from baselines.augment import CHOICES
    aug = Augmenter()
    m, idx = aug.homographies(4000, torch.Generator().manual_seed(0), "cpu")
    counts = torch.bincount(idx, minlength=len(CHOICES))
    assert len(CHOICES) == 8 and "nothing" in CHOICES and counts.min() > 400  # ~500 each
    ident = idx == CHOICES.index("nothing")
    torch.testing.assert_close(m[ident], torch.eye(3).expand(int(ident.sum()), 3, 3))
    shift = m[idx == CHOICES.index("shift")]
    assert shift[:, :2, 2].abs().max() == 14 and torch.equal(shift[:, :2, 2], shift[:, :2, 2].round())
    # every frame of a stack moves with its sample: channels 0-2 and 6-8 of a repeated frame agree
    frame = torch.rand(16, 3, 64, 64)
    out = aug(frame.repeat(1, 3, 1, 1), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out[:, :3], out[:, 6:])
    # identity samples come back unchanged; the two calls on one batch draw independently
    g = torch.Generator().manual_seed(2)
    _, idx2 = aug.homographies(16, torch.Generator().manual_seed(2), "cpu")
    a = aug(frame, generator=g)
    b = aug(frame, generator=g)
    keep = idx2 == CHOICES.index("nothing")
    torch.testing.assert_close(a[keep], frame[keep], atol=1e-4, rtol=0)
    assert not torch.allclose(a, b)


def test_linear_schedule_warms_up_then_decays_to_zero():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = linear_with_warmup(opt, warmup=4, total=12)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:5] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert lrs[4:] == pytest.approx([1 - i / 8 for i in range(8)])
    sched.step()
    assert opt.param_groups[0]["lr"] == 0.0


def test_models_are_orthogonally_initialised_with_zero_bias():
    from baselines import laom
    m = laom.LAOMModel(9, 6, from_dict(laom.LAOMStage, {"encoder_scale": 1, "hidden_dim": 32,
                                                          "latent_dim": 16, "supervised": True}))
    for mod in m.modules():
        if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)):
            w = mod.weight.reshape(mod.weight.shape[0], -1)
            gram = w @ w.t() if w.shape[0] <= w.shape[1] else w.t() @ w
            torch.testing.assert_close(gram, torch.eye(len(gram)), atol=1e-4, rtol=0)
            assert not mod.bias.any()
    assert not any(isinstance(x, torch.nn.LayerNorm) for x in m.idm.encoder.modules())  # norm off


def test_probe_sends_no_gradient_into_the_model():
    model = torch.nn.Linear(5, 3)
    probe = LinearProbe(3, 2, lr=1e-3)
    probe.loss(model(torch.randn(8, 5)), torch.randn(8, 2)).backward()
    assert model.weight.grad is None and probe.linear.weight.grad is not None


def test_fsq_rounds_to_its_levels_with_straight_through_gradients():
    fsq = nets.FSQ(6, levels=[8, 5])
    z = (torch.randn(2000, 6) * 1.5).requires_grad_(True)
    q, codes = fsq(z)
    assert codes.shape == (2000, 3) and codes.min() >= 0 and codes.max() < 40 == fsq.codebook_size
    g = q.detach().view(2000, 3, 2)
    assert set((g[..., 0] * 4).round().unique().tolist()) <= set(range(-4, 4))  # 8 levels
    assert set((g[..., 1] * 2).round().unique().tolist()) <= set(range(-2, 3))  # 5 levels
    torch.testing.assert_close(g * torch.tensor([4.0, 2.0]), (g * torch.tensor([4.0, 2.0])).round())
    assert nets.code_usage(codes, 40) > 0.9  # wide inputs reach (nearly) every code
    q.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0  # straight-through
    with pytest.raises(ValueError, match="multiple"):
        nets.FSQ(7, levels=[8, 5])


# ------------------------------------------------------------------------------ fit + act


@pytest.mark.parametrize("method", sorted(baselines.BASELINES))
def test_fit_and_act_smoke_deterministic(method, views):
    unlabeled, labeled = views
    obs = np.stack([labeled.frames(0)[i:i + 1].repeat(3, 0).transpose(1, 2, 0, 3).reshape(64, 64, 9)
                    for i in range(5)])
    outs, logs = [], []

    class Log:
        def log(self, metrics, step=None):
            logs.append(metrics)

    for _ in range(2):
        agent = baselines.make_agent(method, "tiny", **fast_overrides(method))
        agent.fit(unlabeled, labeled, SPEC, budget=2, seed=3, logger=Log())
        act = agent.act(obs)
        assert act.shape == (5, 6) and act.dtype == np.float32 and np.isfinite(act).all()
        outs.append(act)
    np.testing.assert_array_equal(outs[0], outs[1])
    assert agent.num_parameters() == sum(agent.param_breakdown().values()) > 0
    z = agent.latent_actions(obs, obs)
    if method in ("lapo", "laom", "laom-sup"):
        latent = agent.config["lam"]["latent_dim"]
        assert z.shape == (5, latent) and z.dtype == np.float32
        assert any("lam/probe_mse" in m for m in logs)
    else:
        assert z is None
    with pytest.raises(ValueError, match="uint8"):
        agent.act(obs.astype(np.float32))


@pytest.mark.parametrize("method", ["lapo", "laom", "laom-sup"])
def test_init_untrained_builds_the_weights_fit_starts_from(method, views):
    a = baselines.make_agent(method, "tiny", **fast_overrides(method))
    assert a.init_untrained(SPEC, 7)
    b = baselines.make_agent(method, "tiny", **fast_overrides(method))
    b._start(SPEC, 7, None)  # what fit() does before training
    for k in a.nets:
        for (n, p), q in zip(a.nets[k].state_dict().items(), b.nets[k].state_dict().values()):
            assert torch.equal(p, q), (k, n)
    obs = np.random.default_rng(0).integers(0, 255, (4, 64, 64, 9), dtype=np.uint8)
    z = a.latent_actions(obs, obs[::-1].copy())
    assert z.shape == (4, a.cfg.lam.latent_dim) and np.isfinite(z).all()
    assert not baselines.make_agent("bc", "tiny").init_untrained(SPEC, 0)  # the Agent default


def test_laom_sup_uses_the_cheetah_coefficient_and_differs_from_laom(views):
    unlabeled, labeled = views
    logs = []

    class Log:
        def log(self, metrics, step=None):
            logs.append(metrics)

    agent = baselines.make_agent("laom-sup", "tiny", **fast_overrides("laom-sup"))
    assert agent.cfg.lam.supervised and agent.cfg.lam.sup_coef_by_task["cheetah-run"] == 0.001
    agent.fit(unlabeled, labeled, SPEC, budget=2, seed=0, logger=Log())
    assert any("lam/sup_mse" in m for m in logs)
    assert agent.nets["lam"].action_head is not None
    plain = baselines.make_agent("laom", "tiny", **fast_overrides("laom"))
    assert not plain.cfg.lam.supervised and plain.name == "laom"


def test_save_load_roundtrip(tmp_path, views):
    unlabeled, labeled = views
    agent = baselines.make_agent("laom", "tiny", **fast_overrides("laom"))
    agent.fit(unlabeled, labeled, SPEC, budget=2, seed=0, logger=None)
    obs = np.random.default_rng(1).integers(0, 255, (3, 64, 64, 9), dtype=np.uint8)
    agent.save(str(tmp_path / "ckpt"))
    fresh = baselines.make_agent("laom", "tiny", **fast_overrides("laom"))
    with pytest.raises(RuntimeError, match="fit"):
        fresh.act(obs)
    fresh.load(str(tmp_path / "ckpt"))
    np.testing.assert_array_equal(fresh.act(obs), agent.act(obs))
    np.testing.assert_array_equal(fresh.latent_actions(obs, obs), agent.latent_actions(obs, obs))
    other = baselines.make_agent("bc", "tiny", **fast_overrides("bc"))
    with pytest.raises(ValueError, match="not 'bc'"):
        other.load(str(tmp_path / "ckpt"))


# ------------------------------------------------------------------------------ end to end


@pytest.mark.parametrize("method", sorted(baselines.BASELINES))
def test_every_baseline_runs_through_dcsbench_run(method, tiny_dataset_home, tmp_path):
    """`dcsbench run --agent METHOD --preset tiny` with a few updates on the session's tiny
    dataset (4 x 20-step trajectories): a valid record, with the probe metric for LAM methods."""
    from dcsbench.cli import main
    from dcsbench.results import load_record

    sets = []
    for key, value in fast_overrides(method).items():
        sets += ["--set", f"{key}={value}"]
    out = tmp_path / "runs"
    assert main(["run", "--agent", method, "--preset", "tiny", "--dataset", "cheetah-run-distractors-tiny",
                 "--budget", "2", "--seed", "0", "--out", str(out), "--no-progress",
                 "--episodes", "1", "--episode-length", "20", "--num-envs", "1", *sets]) == 0
    (path,) = [p for p in out.rglob("*.json") if ".work" not in p.parts]
    rec = load_record(path)
    assert rec.method.name == method and rec.method.num_parameters > 0
    assert rec.method.config["runtime"]["device"] == "cpu"
    assert len(rec.primary.returns) == 1 and rec.generalization is not None
    if method in ("lapo", "laom", "laom-sup"):   # the harness's probe, random features beside it
        m = rec.offline_metrics
        assert min(m["probe_mse_train"], m["probe_mse_novel"], m["probe_mse_train_random"]) >= 0
    else:
        assert not rec.offline_metrics


# ------------------------------------------------------------------------------ GPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", sorted(baselines.BASELINES))
@pytest.mark.parametrize("compile_", [False, True])
@pytest.mark.parametrize("on_device", ["true", "false"])
def test_fit_and_act_on_cuda(method, compile_, on_device, views):
    """bf16 autocast, channels_last, optional torch.compile, frames gathered on the GPU or on the
    host (prefetch thread): fits, acts, saves/loads."""
    unlabeled, labeled = views
    agent = baselines.make_agent(method, "tiny", **fast_overrides(
        method, **{"runtime.device": "cuda", "runtime.compile": compile_, "runtime.data_on_device": on_device}))
    agent.fit(unlabeled, labeled, SPEC, budget=2, seed=0, logger=None)
    obs = np.random.default_rng(0).integers(0, 255, (4, 64, 64, 9), dtype=np.uint8)
    act = agent.act(obs)
    assert act.shape == (4, 6) and act.dtype == np.float32 and np.isfinite(act).all()
