#!/usr/bin/env python3
"""BoTorch side of the optimizer benchmark (issue 4): the same loop as `bambo bench optimizer --json`.

Follows BoTorch's multi-objective BO tutorial: one SingleTaskGP per objective (ModelListGP, outputs
standardized, BoTorch's default priors), MAP fit with fit_gpytorch_mll, then qEHVI (or qNEHVI) with a
SobolQMCNormalSampler and optimize_acqf (sequential greedy, restarts from raw samples, L-BFGS-B).
Prints one JSON object with the same keys as `bambo bench optimizer --json`. The maximal hypervolume
is passed in (--max-hv) so that both sides use the same one.

Usage: botorch_run.py --problem branin-currin|zdt1|dtlz2 [--dim D] [--objectives M] [--initial 8]
       [--iterations 20] [--batch 4] [--acquisition qehvi|qnehvi] [--seed 0] [--mc-samples 128]
       [--restarts 10] [--raw-samples 512] [--max-hv HV]
"""
import argparse
import json
import math
import sys
import time
import warnings

import torch
from botorch.acquisition.multi_objective.monte_carlo import (
    qExpectedHypervolumeImprovement,
    qNoisyExpectedHypervolumeImprovement,
)
from botorch.fit import fit_gpytorch_mll
from botorch.models import ModelListGP, SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from botorch.optim import optimize_acqf
from botorch.sampling import SobolQMCNormalSampler
from botorch.test_functions.multi_objective import DTLZ2, ZDT1, BraninCurrin
from botorch.utils.multi_objective.box_decompositions.non_dominated import FastNondominatedPartitioning
from botorch.utils.multi_objective.hypervolume import Hypervolume
from botorch.utils.multi_objective.pareto import is_non_dominated
from botorch.utils.sampling import draw_sobol_samples
from gpytorch.mlls.sum_marginal_log_likelihood import SumMarginalLogLikelihood

warnings.filterwarnings("ignore")
TKWARGS = {"dtype": torch.double, "device": torch.device("cpu")}


def make_problem(name, dim, objectives):
    if name == "branin-currin":
        return BraninCurrin(negate=True).to(**TKWARGS)
    if name == "zdt1":
        return ZDT1(dim=dim or 30, negate=True).to(**TKWARGS)
    if name == "dtlz2":
        m = objectives or 2
        return DTLZ2(dim=dim or m + 9, num_objectives=m, negate=True).to(**TKWARGS)
    raise SystemExit(f"--problem must be branin-currin, zdt1 or dtlz2 (got {name})")


def fit_models(x, y):
    models = [SingleTaskGP(x, y[:, i : i + 1], outcome_transform=Standardize(m=1)) for i in range(y.shape[-1])]
    model = ModelListGP(*models)
    fit_gpytorch_mll(SumMarginalLogLikelihood(model.likelihood, model))
    return model


def propose(model, x, y, problem, args):
    sampler = SobolQMCNormalSampler(sample_shape=torch.Size([args.mc_samples]))
    ref = problem.ref_point
    if args.acquisition == "qehvi":
        partitioning = FastNondominatedPartitioning(ref_point=ref, Y=y)
        acq = qExpectedHypervolumeImprovement(model=model, ref_point=ref, partitioning=partitioning, sampler=sampler)
    else:
        acq = qNoisyExpectedHypervolumeImprovement(model=model, ref_point=ref, X_baseline=x, sampler=sampler,
                                                   prune_baseline=True)
    bounds = torch.stack([torch.zeros(problem.dim, **TKWARGS), torch.ones(problem.dim, **TKWARGS)])
    candidates, _ = optimize_acqf(acq_function=acq, bounds=bounds, q=args.batch, num_restarts=args.restarts,
                                  raw_samples=args.raw_samples, options={"batch_limit": 5, "maxiter": 200},
                                  sequential=True)
    return candidates.detach()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--problem", required=True)
    p.add_argument("--dim", type=int)
    p.add_argument("--objectives", type=int)
    p.add_argument("--initial", type=int, default=8)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--acquisition", choices=["qehvi", "qnehvi"], default="qehvi")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mc-samples", type=int, default=128)
    p.add_argument("--restarts", type=int, default=10)
    p.add_argument("--raw-samples", type=int, default=512)
    p.add_argument("--max-hv", type=float)
    args = p.parse_args()

    torch.manual_seed(args.seed)
    problem = make_problem(args.problem, args.dim, args.objectives)
    hv = Hypervolume(ref_point=problem.ref_point)

    def hypervolume(y):
        return hv.compute(y[is_non_dominated(y)])

    x = draw_sobol_samples(bounds=problem.bounds, n=args.initial, q=1, seed=args.seed).squeeze(1).to(**TKWARGS)
    y = problem(x)
    hypervolumes = [hypervolume(y)]
    fit_seconds, acq_seconds = [], []
    for _ in range(args.iterations):
        t0 = time.perf_counter()
        model = fit_models(x, y)
        t1 = time.perf_counter()
        new_x = propose(model, x, y, problem, args)
        t2 = time.perf_counter()
        fit_seconds.append(t1 - t0)
        acq_seconds.append(t2 - t1)
        x = torch.cat([x, new_x])
        y = torch.cat([y, problem(new_x)])
        hypervolumes.append(hypervolume(y))
        print(f"iteration {len(fit_seconds)}: HV {hypervolumes[-1]:.6f}, step {t2 - t0:.2f} s", file=sys.stderr, flush=True)

    max_hv = args.max_hv
    gaps = [math.log10(max_hv - h) if max_hv is not None and max_hv > h else None for h in hypervolumes]
    print(json.dumps({
        "problem": args.problem, "dim": problem.dim, "objectives": problem.num_objectives,
        "initial": args.initial, "iterations": args.iterations, "batch": args.batch,
        "acquisition": args.acquisition, "seed": args.seed, "mcSamples": args.mc_samples,
        "restarts": args.restarts, "rawSamples": args.raw_samples,
        "referencePoint": problem.ref_point.tolist(), "maxHypervolume": max_hv,
        "hypervolumes": hypervolumes, "logHypervolumeGaps": gaps,
        "finalHypervolume": hypervolumes[-1], "finalLogHypervolumeGap": gaps[-1],
        "fitSeconds": fit_seconds, "acquisitionSeconds": acq_seconds,
        "stepSeconds": [a + b for a, b in zip(fit_seconds, acq_seconds)],
    }))


if __name__ == "__main__":
    main()
