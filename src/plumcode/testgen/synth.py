"""Test synthesis: prompt an LM, parse its tests, validate them, write one record per problem.

Pipeline per problem (each step records why a candidate was dropped)::

    generate -> parse (AST, dedup) -> static checks -> cap -> sanity run (null program: trivially
    true / non-terminating) -> validation modes -> cap on kept tests

Validation modes (combinable, applied in this order):

- ``reference``: keep tests the problem's reference solution passes.
- ``inputs``: the LM proposes inputs only; expected outputs come from running the reference
  (``call``/``stdio`` tests correct by construction).
- ``agreement``: CodeT dual execution agreement over policy samples, for problems without a
  reference: samples that pass exactly the same tests form a consensus set scored
  |samples| x |tests|; the tests of the best set are kept.

A mode that cannot apply to a problem (no reference, no samples) is skipped for that problem and
listed in the record's ``skipped``; its tests are then not filtered by that mode.
"""

from __future__ import annotations

import ast
import logging
import textwrap
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from plumcode import values
from plumcode.generation.base import Backend, SamplingParams
from plumcode.io import DataError, JsonlAppender, read_jsonl
from plumcode.problems.schema import Problem, TestCase
from plumcode.sandbox.types import TestResult
from plumcode.testgen import prompts as P
from plumcode.testgen.augment import augment_inputs, input_key, output_type_matches
from plumcode.testgen.execution import Runner, default_runner
from plumcode.testgen.parse import (
    Candidate,
    ParseStats,
    ProposedInput,
    parse_assert_tests,
    parse_input_calls,
    parse_stdio_inputs,
    parse_stdio_tests,
    problem_signature,
    static_check,
)

log = logging.getLogger(__name__)

VALIDATIONS = ("reference", "inputs", "agreement")
RECORD_VERSION = 1


@dataclass
class TestgenConfig:
    """Everything that decides which tests come out (recorded in every output record)."""

    __test__ = False

    validate: tuple[str, ...] = ("reference",)
    prompt_style: str = "chat"  # "chat" for instruct models, "completion" for base models
    template_dir: str | None = None
    n_completions: int = 1  # completions per prompt
    n_tests: int = 10  # tests the prompt asks for
    n_inputs: int = 10  # inputs the input prompt asks for
    max_candidates: int = 40  # unique parsed tests examined per problem
    max_tests: int = 20  # tests kept per problem
    temperature: float = 0.0
    top_p: float = 0.95
    max_tokens: int = 768
    seed: int | None = 0
    timeout_s: float = 3.0  # per test, in the sandbox
    batch_size: int = 8  # problems per backend.generate call
    inputs_from_asserts: bool = True  # inputs mode also reuses the arguments of generated asserts
    null_check: bool = True  # run tests against a program whose function always raises
    float_atol: float = 1e-6  # tolerance given to call tests whose expected value holds floats
    inputs_prompt: bool | None = None  # also ask for inputs (None: only when the inputs mode is on)
    use_contract: bool = True  # inputs mode: reject inputs violating metadata["contract"] (EvalPlus)
    augment_inputs: int = 0  # inputs mode: extra inputs per problem mutated from the proposals (0: off)

    def __post_init__(self) -> None:
        self.validate = tuple(self.validate)
        bad = [v for v in self.validate if v not in VALIDATIONS]
        if bad:
            raise ValueError(f"unknown validation mode(s) {bad}; choose from {VALIDATIONS}")
        if self.prompt_style not in P.STYLES:
            raise ValueError(f"prompt_style must be one of {P.STYLES}")
        if self.max_tests < 1 or self.max_candidates < 1 or self.n_completions < 1:
            raise ValueError("max_tests, max_candidates and n_completions must be >= 1")
        if self.augment_inputs < 0:
            raise ValueError("augment_inputs must be >= 0")

    @property
    def needs_inputs_prompt(self) -> bool:
        return self.inputs_prompt if self.inputs_prompt is not None else "inputs" in self.validate

    def sampling(self) -> SamplingParams:
        stop = P.COMPLETION_STOPS if self.prompt_style == "completion" else ()
        return SamplingParams(n=self.n_completions, temperature=self.temperature, top_p=self.top_p,
                              max_tokens=self.max_tokens, stop=stop, seed=self.seed)


@dataclass
class Generated:
    """Raw model output for one problem (enough to re-run validation without the model)."""

    problem: Problem
    tests_prompt: P.RenderedPrompt
    completions: list[str]
    inputs_prompt: P.RenderedPrompt | None = None
    inputs_completions: list[str] = field(default_factory=list)
    generator: dict = field(default_factory=dict)
    generation_s: float = 0.0


def _null_program(problem: Problem) -> str:
    if problem.is_stdio:
        return "pass\n"
    return (f"def {problem.entry_point}(*args, **kwargs):\n"
            "    raise NotImplementedError('testgen null program')\n")


# -- generation -----------------------------------------------------------------------------------


def generate(problems: Sequence[Problem], backend: Backend, config: TestgenConfig) -> list[Generated]:
    """One ``backend.generate`` call per batch of problems (test and input prompts together)."""
    out: list[Generated] = []
    ident = backend.identity()
    params = config.sampling()
    for b in range(0, len(problems), config.batch_size):
        batch = problems[b:b + config.batch_size]
        rendered: list[tuple[P.RenderedPrompt, P.RenderedPrompt | None]] = []
        flat = []
        for p in batch:
            tp = P.render("tests", p, config.prompt_style, config.n_tests, config.template_dir)
            ip = (P.render("inputs", p, config.prompt_style, config.n_inputs, config.template_dir)
                  if config.needs_inputs_prompt else None)
            rendered.append((tp, ip))
            flat.append(tp.prompt)
            if ip is not None:
                flat.append(ip.prompt)
        t0 = time.monotonic()
        comps = backend.generate(flat, params)
        dt = (time.monotonic() - t0) / max(len(batch), 1)
        k = 0
        for p, (tp, ip) in zip(batch, rendered, strict=True):
            g = Generated(p, tp, [c.text for c in comps[k]], generator=ident, generation_s=dt)
            k += 1
            if ip is not None:
                g.inputs_prompt, g.inputs_completions = ip, [c.text for c in comps[k]]
                k += 1
            out.append(g)
    return out


# -- validation -----------------------------------------------------------------------------------


@dataclass
class _Work:
    gen: Generated
    cands: list[Candidate]
    stats: ParseStats
    skipped: list[str] = field(default_factory=list)
    agreement: dict | None = None
    n_input_proposals: int = 0

    @property
    def problem(self) -> Problem:
        return self.gen.problem

    def pending(self) -> list[Candidate]:
        return [c for c in self.cands if c.status in ("pending", "valid")]


def _has_float(v: Any) -> bool:
    if isinstance(v, float):
        return True
    if isinstance(v, (list, tuple, set, frozenset)):
        return any(_has_float(x) for x in v)
    if isinstance(v, dict):
        return any(_has_float(x) for x in v.values())
    return False


def _parse(gen: Generated, config: TestgenConfig) -> _Work:
    p = gen.problem
    stats = ParseStats()
    if p.is_stdio:
        cands = parse_stdio_tests(gen.completions, stats, prefix=gen.tests_prompt.prefix)
    else:
        cands = parse_assert_tests(gen.completions, p.entry_point or "", stats, prefix=gen.tests_prompt.prefix)
        sig = problem_signature(p)
        for c in cands:
            why = static_check(c, p.entry_point or "", sig)
            if why:
                c.reject("static", why)
    n_ok = 0
    for c in cands:
        if c.status == "pending":
            n_ok += 1
            if n_ok > config.max_candidates:
                c.reject("cap_candidates", f"cap: over max_candidates={config.max_candidates}")
    return _Work(gen, cands, stats)


def contracted_reference(problem: Problem) -> str | None:
    """The reference with the problem's input contract (``metadata["contract"]``: EvalPlus-style
    ``assert``s on the arguments) at the top of its function body, so proposed inputs outside the
    task's domain raise instead of becoming tests of unspecified behaviour."""
    ref, contract, ep = problem.reference_solution, problem.metadata.get("contract"), problem.entry_point
    if not ref or not isinstance(contract, str) or not contract.strip() or not ep:
        return ref
    try:
        tree = ast.parse(ref)
        guard = ast.parse(textwrap.dedent(contract.strip("\n"))).body
    except SyntaxError:
        return ref
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == ep:
            at = 1 if (node.body and isinstance(node.body[0], ast.Expr)
                       and isinstance(node.body[0].value, ast.Constant)
                       and isinstance(node.body[0].value.value, str)) else 0
            node.body[at:at] = guard
            return ast.unparse(ast.fix_missing_locations(tree)) + "\n"
    return ref


def _oracle_test(p: Problem, args: tuple, o: Any) -> TestCase | None:
    """A test with the benchmark's own output comparison, for EvalPlus problems whose ground truth
    is not plain equality (``metadata["special_oracle"]``: set equality, tolerance, ...), built by
    the same code that builds their ground-truth tests."""
    if not p.metadata.get("special_oracle") or p.source not in ("humaneval+", "mbpp+") or not p.entry_point:
        return None
    try:
        from plumcode.problems import evalplus as ep

        dataset = "humaneval" if p.source == "humaneval+" else "mbpp"
        tests, _ = ep.build_tests(dataset, p.entry_point, [list(args)],
                                  [[True, values.encode(o.value), "", o.duration_s]], p.metadata.get("atol", 0) or 0)
    except Exception as e:  # noqa: BLE001 - fall back to plain equality
        log.debug("%s: no oracle test (%s)", p.id, e)
        return None
    return tests[0] if tests else None


def _add_input_tests(w: _Work, config: TestgenConfig, runner: Runner) -> None:
    """Inputs mode: reference outputs for LM-proposed inputs become call/stdio tests.

    With ``config.augment_inputs``, call problems also get type-aware mutants of the proposals on
    which the reference succeeded (:mod:`plumcode.testgen.augment`; origin ``"augmented"``, after
    the LM's own inputs and within ``max_candidates``); one is kept only if the reference's output
    has a type it also returns on the proposals. Stdio problems are not augmented.
    """
    p, g = w.problem, w.gen
    if not p.reference_solution:
        w.skipped.append("inputs: no reference solution")
        return
    existing = {c.key for c in w.cands}
    if p.is_stdio:
        inputs = parse_stdio_inputs(g.inputs_completions, prefix=g.inputs_prompt.prefix if g.inputs_prompt else "")
        w.n_input_proposals = len(inputs)
        if config.inputs_from_asserts:
            reused_in = [c.test.input or "" for c in w.cands if c.test.input not in inputs]
            inputs += reused_in
            w.n_input_proposals += len(reused_in)
        outs = runner.stdio_reference(p.reference_solution, inputs) if inputs else []
        for inp, o in zip(inputs, outs, strict=True):
            key = f"stdio-input:{inp}"
            if key in existing:
                continue
            existing.add(key)
            c = Candidate(TestCase("stdio", input=inp, output=o.value if o.ok else ""), key, origin="inputs",
                          status="valid", stage="inputs")
            if not o.ok:
                c.reject("inputs", f"reference failed on this input: {o.error}"[:300])
            w.cands.append(c)
        return
    sig = problem_signature(p)
    rejected: list[tuple[str, str]] = []
    prefix = g.inputs_prompt.prefix if g.inputs_prompt else ""
    props = parse_input_calls(g.inputs_completions, p.entry_point or "", sig, rejected, prefix=prefix)
    w.n_input_proposals = len(props) + len(rejected)
    if config.inputs_from_asserts:
        seen = {x.key for x in props}
        asserted = parse_input_calls([c.test.code or "" for c in w.cands if c.origin == "model"],
                                     p.entry_point or "", sig, [])
        reused = [x for x in asserted if x.key not in seen]
        props += reused
        w.n_input_proposals += len(reused)  # each is a candidate test of its own
    budget = config.max_candidates
    props = props[:budget]
    ref = (contracted_reference(p) if config.use_contract else None) or p.reference_solution
    outs = runner.call_reference(ref, p.entry_point or "", [x.args for x in props], setup=p.setup) if props else []
    batches = [("inputs", props, outs)]
    seed_outs = [o.value for o in outs if o.ok]
    n_aug = min(config.augment_inputs, budget - len(props))
    if n_aug > 0:
        aug = augment_inputs([x.args for x, o in zip(props, outs, strict=True) if o.ok], n_aug,
                             seed=f"{config.seed}:{p.id}", exclude=[x.key for x in props],
                             guard=ref == p.reference_solution)  # a contract, when present, guards instead
        aug_props = [ProposedInput(a, input_key(a), f"{p.entry_point}({', '.join(map(repr, a))})") for a in aug]
        w.n_input_proposals += len(aug_props)
        aug_outs = runner.call_reference(ref, p.entry_point or "", aug, setup=p.setup) if aug else []
        batches.append(("augmented", aug_props, aug_outs))
    for src, why in rejected:
        w.cands.append(Candidate(TestCase("assert", code=f"# proposed input\n{src}"), f"rejected-input:{src}",
                                 origin="inputs", status="rejected", stage="static", reason=why))
    for origin, b_props, b_outs in batches:
        for prop, o in zip(b_props, b_outs, strict=True):
            key = f"input:{prop.key}"
            if key in existing:
                continue
            existing.add(key)
            c = Candidate(TestCase("assert", code=f"# proposed input\n{prop.source}"), key, origin=origin)
            if not o.ok:
                reason = "timeout: reference did not finish" if "timeout" in (o.error or "").lower() else \
                    f"invalid_input: reference raised {o.error}"[:300]
                c.reject("inputs", reason)
                w.cands.append(c)
                continue
            try:
                values.encode(o.value)
                values.encode(prop.args)
            except values.UnsupportedValue as e:
                c.reject("inputs", f"unrepresentable: {e}")
                w.cands.append(c)
                continue
            if origin == "augmented" and not output_type_matches(o.value, seed_outs):
                c.reject("inputs", f"output_type: the reference returns {type(o.value).__name__} here, "
                                   "unlike on the proposed inputs (likely out of domain)")
                w.cands.append(c)
                continue
            atol = config.float_atol if _has_float(o.value) else 0.0
            test = _oracle_test(p, prop.args, o) or TestCase("call", args=prop.args, expected=o.value, atol=atol)
            w.cands.append(Candidate(test, key, origin=origin, status="valid", stage="inputs",
                                     meta={"call": prop.source}))


def _reference_reason(r: TestResult) -> str:
    if r.status == "timeout":
        return "timeout: does not terminate within the limit on the reference"
    if r.status == "memory":
        return "memory: exceeds the memory limit on the reference"
    msg = ((r.message or "").strip().splitlines()[-1:] or [""])[0]
    return f"reference_{r.status}: the reference solution does not pass it {msg}".strip()[:300]


def _sanity_and_reference(works: list[_Work], config: TestgenConfig, runner: Runner) -> None:
    """One sandbox pass: each problem's model-written tests against [reference?, null?]."""
    jobs = []
    plans = []
    for w in works:
        p = w.problem
        use_ref = "reference" in config.validate and bool(p.reference_solution)
        if "reference" in config.validate and not p.reference_solution:
            w.skipped.append("reference: no reference solution")
        cands = [c for c in w.pending() if c.origin == "model"]
        programs, who = [], []
        if use_ref:
            programs.append(p.reference_solution)
            who.append("reference")
        if config.null_check:
            programs.append(_null_program(p))
            who.append("null")
        if not cands or not programs:
            for c in cands:
                c.status = "valid"
            continue
        jobs.append((replace(p, tests=[c.test for c in cands]), programs))
        plans.append((cands, who))
    results = runner.run_many(jobs) if jobs else []
    for (cands, who), per_prog in zip(plans, results, strict=True):
        by = dict(zip(who, per_prog, strict=True))
        for t, c in enumerate(cands):
            null = by.get("null")
            ref = by.get("reference")
            if null is not None:
                r = null[t]
                if r.status == "pass":
                    c.reject("sanity", "trivially_true: passes when the function always raises")
                    continue
                if r.status == "timeout":
                    c.reject("sanity", "timeout: does not terminate (null program)")
                    continue
            if ref is not None:
                r = ref[t]
                if r.status != "pass":
                    c.reject("reference", _reference_reason(r))
                    continue
                c.stage = "reference"
            c.status = "valid"
            if not c.stage:
                c.stage = "sanity"


def best_consensus(passes: Sequence[Sequence[bool]]) -> tuple[set[int], set[int], int]:
    """CodeT dual execution agreement: (samples, tests, score) of the best consensus set.

    Samples passing exactly the same set of tests form one consensus set; its score is
    |samples| * |tests|. Ties go to more tests, then to the earlier set.
    """
    groups: dict[frozenset[int], set[int]] = {}
    for s, row in enumerate(passes):
        groups.setdefault(frozenset(t for t, ok in enumerate(row) if ok), set()).add(s)
    best: tuple[int, int, frozenset[int]] | None = None
    for tests, samples in groups.items():
        cand = (len(samples) * len(tests), len(tests), tests)
        if best is None or cand[:2] > best[:2]:
            best = cand
    if best is None or best[0] == 0:
        return set(), set(), 0
    return set(groups[best[2]]), set(best[2]), best[0]


def _agreement(works: list[_Work], samples: Mapping[str, Sequence[str]], runner: Runner) -> None:
    jobs, plans = [], []
    for w in works:
        codes = list(samples.get(w.problem.id, ()))
        cands = w.pending()
        if not codes:
            w.skipped.append("agreement: no policy samples")
            continue
        if not cands:
            continue
        jobs.append((replace(w.problem, tests=[c.test for c in cands]), codes))
        plans.append((w, cands, codes))
    results = runner.run_many(jobs) if jobs else []
    for (w, cands, codes), per in zip(plans, results, strict=True):
        passes = [[r.status == "pass" for r in row] for row in per]
        s_best, t_best, score = best_consensus(passes)
        w.agreement = {"n_samples": len(codes), "score": score, "samples": sorted(s_best),
                       "n_consensus_samples": len(s_best), "n_consensus_tests": len(t_best)}
        for t, c in enumerate(cands):
            if t in t_best:
                c.stage = "agreement"
                continue
            n_pass = sum(row[t] for row in passes)
            if all(row[t].status == "timeout" for row in per):
                c.reject("agreement", "timeout: does not terminate on any sample")
            else:
                c.reject("agreement", f"agreement: outside the best consensus set "
                                      f"(passed by {n_pass}/{len(codes)} samples; best set "
                                      f"{len(s_best)} samples x {len(t_best)} tests)")


def _finish(w: _Work, config: TestgenConfig, runner: Runner) -> dict:
    valid = [c for c in w.cands if c.status in ("pending", "valid")]
    if w.problem.is_stdio:  # the same stdin from the model and from the inputs prompt: keep one
        seen: set[str] = set()
        for c in valid:
            if (c.test.input or "") in seen:
                c.reject("duplicate", "duplicate: same stdin as an earlier valid test")
            seen.add(c.test.input or "")
        valid = [c for c in valid if c.status != "rejected"]
    # keep both origins when capping: alternate model-written and reference-computed tests
    a = [c for c in valid if c.origin == "model"]
    b = [c for c in valid if c.origin != "model"]
    order: list[Candidate] = []
    for i in range(max(len(a), len(b))):
        order += ([a[i]] if i < len(a) else []) + ([b[i]] if i < len(b) else [])
    kept = order[:config.max_tests]
    for c in order[config.max_tests:]:
        c.reject("cap_tests", f"cap: over max_tests={config.max_tests}")
    for c in kept:
        c.status = "kept"
    g = w.gen
    n_reject = {}
    for c in w.cands:
        if c.status == "rejected":
            tag = c.reason.split(":", 1)[0]
            n_reject[tag] = n_reject.get(tag, 0) + 1
    unexamined_or_invalid = ("static", "cap_candidates", "sanity", "inputs")
    parsed = len([c for c in w.cands if not (c.stage == "static" and c.reason.startswith("syntax"))])
    valid_n = len([c for c in w.cands if not (c.status == "rejected" and c.stage in unexamined_or_invalid)])
    funnel = {
        "completions": len(g.completions) + len(g.inputs_completions),
        "generated": w.stats.extracted + w.n_input_proposals,
        "parsed": parsed,
        "valid": valid_n,
        "kept": len(kept),
        "kept_by_origin": {o: sum(c.origin == o for c in kept) for o in sorted({c.origin for c in kept})},
        "rejected_by": n_reject,
        "duplicates": w.stats.duplicates,
        "unparsable_blocks": w.stats.unparsable_blocks,
    }
    return {
        "version": RECORD_VERSION,
        "problem_id": w.problem.id,
        "entry_point": w.problem.entry_point,
        "generator": g.generator,
        "prompt": g.tests_prompt.to_json(),
        "inputs_prompt": g.inputs_prompt.to_json() if g.inputs_prompt else None,
        "completions": g.completions,
        "inputs_completions": g.inputs_completions,
        "validate": list(config.validate),
        "skipped": w.skipped,
        "runner": runner.name,
        "tests": [c.to_json() for c in w.cands],
        "kept": [c.test.to_json() for c in kept],
        "funnel": funnel,
        "agreement": w.agreement,
        "generation_s": round(g.generation_s, 3),
        "config": {k: v for k, v in asdict(config).items()},
    }


def validate(generated: Sequence[Generated], config: TestgenConfig, runner: Runner | None = None,
             samples: Mapping[str, Sequence[str]] | None = None) -> list[dict]:
    """Parse and validate raw generations; one output record per problem (see module doc)."""
    runner = runner or default_runner(config.timeout_s)
    works = [_parse(g, config) for g in generated]
    if "inputs" in config.validate:
        for w in works:
            _add_input_tests(w, config, runner)
    _sanity_and_reference(works, config, runner)
    if "inputs" in config.validate and "reference" not in config.validate:
        for w in works:  # inputs alone: keep only reference-computed expectations
            if not w.problem.reference_solution:
                continue
            for c in w.pending():
                if c.origin == "model":
                    c.reject("replaced", "replaced: inputs mode keeps only reference-computed expectations "
                                         "(add 'reference' to also keep model-written tests it passes)")
    if "agreement" in config.validate:
        _agreement(works, samples or {}, runner)
    return [_finish(w, config, runner) for w in works]


# -- records <-> problems -------------------------------------------------------------------------


def generated_from_record(rec: dict, problem: Problem) -> Generated:
    """Rebuild the raw generation of a tests.jsonl record (validate again with other modes)."""
    def rp(d: dict | None) -> P.RenderedPrompt | None:
        return P.RenderedPrompt(d["prompt"], d.get("prefix", ""), d.get("template", "")) if d else None

    tp = rp(rec.get("prompt"))
    if tp is None:
        raise DataError("record has no prompt", field="prompt")
    return Generated(problem, tp, list(rec.get("completions", [])), rp(rec.get("inputs_prompt")),
                     list(rec.get("inputs_completions", [])), rec.get("generator", {}),
                     rec.get("generation_s", 0.0))


def read_records(path: str | Path) -> list[dict]:
    out = []
    for line, rec in read_jsonl(path):
        if not isinstance(rec.get("problem_id"), str) or not isinstance(rec.get("kept"), list):
            raise DataError("not a tests.jsonl record (needs problem_id and kept)", path, line)
        out.append(rec)
    return out


def problems_with_synthetic_tests(problems: Iterable[Problem], records: Iterable[dict] | str | Path,
                                  drop_empty: bool = True) -> list[Problem]:
    """Problems whose ``tests`` are the kept synthetic tests (what the loop runs samples against).

    Problems without a record, or (with ``drop_empty``) without any kept test, are left out: a
    problem with no test would label every sample as passing.
    """
    recs = read_records(records) if isinstance(records, (str, Path)) else list(records)
    by_id = {r["problem_id"]: r for r in recs}
    out = []
    for p in problems:
        r = by_id.get(p.id)
        if r is None:
            continue
        tests = [TestCase.from_json(t, fld=f"{p.id}.kept") for t in r["kept"]]
        if not tests and drop_empty:
            continue
        out.append(replace(p, tests=tests, metadata={**p.metadata, "tests_source": "synthetic",
                                                      "n_ground_truth_tests": len(p.tests)}))
    return out


# -- the library entry point ----------------------------------------------------------------------


def synthesize_tests(problems: Sequence[Problem], backend: Backend, config: TestgenConfig | None = None,
                     *, out: str | Path | None = None, runner: Runner | None = None,
                     samples: Mapping[str, Sequence[str]] | None = None,
                     progress: bool = False) -> list[dict]:
    """Generate and validate tests for ``problems``; one record per problem, in input order.

    With ``out``, records are appended to that JSONL as each batch finishes and problems already
    in it are skipped (their stored records are returned), so an interrupted run resumes.
    ``samples`` maps problem id -> policy sample codes (needed by the ``agreement`` mode).
    """
    config = config or TestgenConfig()
    runner = runner or default_runner(config.timeout_s)
    done: dict[str, dict] = {}
    if out is not None and Path(out).exists():
        done = {r["problem_id"]: r for r in read_records(out)}
    todo = [p for p in problems if p.id not in done]
    if done:
        log.info("resuming: %d of %d problems already in %s", len(problems) - len(todo), len(problems), out)
    appender = JsonlAppender(out) if out is not None else None
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc="tests", unit="problem")
    try:
        for b in range(0, len(todo), config.batch_size):
            batch = todo[b:b + config.batch_size]
            recs = validate(generate(batch, backend, config), config, runner, samples)
            for r in recs:
                done[r["problem_id"]] = r
                if appender is not None:
                    appender.write(r)
            if bar is not None:
                bar.update(len(batch))
    finally:
        if appender is not None:
            appender.close()
        if bar is not None:
            bar.close()
    return [done[p.id] for p in problems if p.id in done]


def funnel_totals(records: Iterable[dict]) -> dict:
    """Sum of per-problem funnels, plus how many problems kept at least one test."""
    tot: dict[str, Any] = {"problems": 0, "with_tests": 0, "generated": 0, "parsed": 0, "valid": 0, "kept": 0}
    rej: dict[str, int] = {}
    origin: dict[str, int] = {}
    for r in records:
        f = r["funnel"]
        tot["problems"] += 1
        tot["with_tests"] += int(f["kept"] > 0)
        for k in ("generated", "parsed", "valid", "kept"):
            tot[k] += f[k]
        for k, v in f.get("rejected_by", {}).items():
            rej[k] = rej.get(k, 0) + v
        for k, v in f.get("kept_by_origin", {}).items():
            origin[k] = origin.get(k, 0) + v
    tot["rejected_by"] = dict(sorted(rej.items(), key=lambda kv: -kv[1]))
    tot["kept_by_origin"] = origin  # model-written asserts vs reference-computed (inputs, augmented)
    return tot
