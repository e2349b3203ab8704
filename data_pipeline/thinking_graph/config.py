"""The strict config of the thinking-graph job (``ray_jobs/thinking_graph.py``). Defaults live here only."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, model_validator

from data_pipeline.thinking_graph.paths import REFERENCE_EXCLUDED_RELATIONS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UmlsSpec(_Strict):
    #: A UMLS release's META folder (MRCONSO.RRF, MRSTY.RRF, MRREL.RRF). None = the made-up UMLS
    #: (data_pipeline.thinking_graph.fake_umls), written under ``<output_dir>/_work/fake_umls``: demos and tests only.
    path: str | None = None
    #: Where the QuickUMLS index is built once per vocabulary (default ``<output_dir>/_cache``).
    index_cache_dir: str | None = None
    excluded_relations: list[str] = list(REFERENCE_EXCLUDED_RELATIONS)
    #: MRCONSO atoms kept by their SUPPRESS flag: N = not suppressible (O obsolete, E/Y suppressible are dropped,
    #: as the UMLS default subset does); add "E", "Y" or "O" to keep those too.
    atom_suppress: list[Literal["N", "O", "E", "Y"]] = ["N"]
    #: MRREL relations kept by their SUPPRESS flag (same values).
    relation_suppress: list[Literal["N", "O", "E", "Y"]] = ["N"]
    #: MRCONSO sources (SAB) whose strings are used, e.g. [SNOMEDCT_US, RXNORM, LNC, ICD10CM, MSH]; None = all.
    #: A licence-restricted source (SRL > 0) you may not use belongs out of this list.
    sources: list[str] | None = None
    max_path_length: int = Field(10, ge=1)
    max_path_nodes: int = Field(2000, ge=2)

    def sources_tuple(self) -> tuple[str, ...] | None:
        return None if self.sources is None else tuple(self.sources)


class MatcherSpec(_Strict):
    """QuickUMLS settings; the defaults are QuickUMLS 1.4.2's, which the reference used."""

    threshold: float = Field(0.7, gt=0, le=1)
    similarity_name: Literal["jaccard", "dice", "cosine", "overlap"] = "jaccard"
    window: int = Field(5, ge=1)
    min_match_length: int = Field(3, ge=1)
    overlapping_criteria: Literal["score", "length"] = "score"
    #: None = QuickUMLS's ACCEPTED_SEMTYPES; [] = all semantic types.
    accepted_semtypes: list[str] | None = None
    #: Item names the vocabulary knows neither exactly nor normalised go to full-text search over the UMLS strings,
    #: then QuickUMLS's best match (the reference's fallbacks); off = they stay name-keyed concepts without a CUI.
    item_name_fallback: bool = True
    #: Event table -> free-text fields read by QuickUMLS (default: admission_info, radiology and discharge text).
    text_fields: dict[str, list[str]] | None = None

    def settings(self):
        from data_pipeline.thinking_graph.matcher import MatcherSettings

        return MatcherSettings(self.threshold, self.similarity_name, self.window, self.min_match_length,
                               self.overlapping_criteria,
                               None if self.accepted_semtypes is None else tuple(self.accepted_semtypes))


class EvidenceSpec(_Strict):
    """Co-occurrence filter (reference defaults: --min_support 5 --threshold 5 --topk 20)."""

    min_support: int = Field(5, ge=1)
    threshold: float = Field(5.0, ge=0)
    top_k: int = Field(20, ge=1)
    #: Keep only samples with at least one UMLS path (the reference's --filter_nograph).
    require_graph: bool = True


class SynthesisSpec(_Strict):
    #: template: the evidence graph rendered as text (no LLM); llm: chains written by an OpenAI-compatible endpoint.
    mode: Literal["template", "llm"] = "template"
    #: Default: the project's own Ray Serve endpoint (python -m ray_jobs.serve) on this machine.
    base_url: str = "http://127.0.0.1:8000/v1"
    #: Served model name; None = the first one of GET /v1/models.
    model: str | None = None
    #: Environment variable holding the bearer key (unset variable = no key).
    api_key_env: str | None = "EHR_SERVE_API_KEY"
    #: Non-loopback hosts that are yours (e.g. the cluster's Serve service name). Anything else is a third party.
    trusted_hosts: list[str] = []
    #: Sending EHR text to a host that is neither loopback nor trusted (a third-party API) needs this set to true.
    allow_ehr_to_third_party_api: bool = False
    #: Route requests through the proxy that HTTP(S)_PROXY / ALL_PROXY name (NO_PROXY honoured). Off: proxy
    #: variables are ignored. On: the proxy is a destination too and must be this machine or a trusted host.
    use_proxy_env: bool = False
    #: Samples in flight at once (each asks for candidates_per_sample completions in turn).
    max_concurrency: int = Field(8, ge=1)
    max_retries: int = Field(4, ge=0)
    #: A sample whose requests fail (timeouts, 5xx) in this many runs is recorded as failed and not asked again.
    give_up_after_runs: int = Field(3, ge=1)
    backoff_seconds: float = Field(1.0, ge=0)
    timeout_seconds: float = Field(120.0, gt=0)
    #: Candidates per sample (reference: n=3; one request each, as the project's endpoint serves n=1).
    candidates_per_sample: int = Field(3, ge=1)
    temperature: float = Field(0.5, ge=0)
    max_tokens: int = Field(2048, ge=1)
    #: Show the UMLS paths in the prompt (the reference's final data used them).
    with_knowledge: bool = True
    min_label_recall: float = Field(0.7, ge=0, le=1)
    #: Samples whose candidates all fail the filter: drop them (reference) or keep a template-written chain.
    on_rejected: Literal["drop", "template"] = "drop"
    price_per_million_prompt_tokens: float = Field(0.0, ge=0)
    price_per_million_completion_tokens: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _where(self) -> "SynthesisSpec":
        if self.mode == "llm":
            host = urlparse(self.base_url).hostname
            if not host:
                raise ValueError(f"synthesis.base_url={self.base_url!r} has no host; e.g. http://127.0.0.1:8000/v1")
            if not is_local_or_trusted(host, self.trusted_hosts) and not self.allow_ehr_to_third_party_api:
                raise ValueError(
                    f"synthesis.base_url host {host!r} is not this machine nor in synthesis.trusted_hosts: EHR text "
                    "would leave the machine. Serve the model yourself (python -m ray_jobs.serve) or, if your data "
                    "use agreement allows it, set synthesis.allow_ehr_to_third_party_api: true")
        return self


def is_local_or_trusted(host: str, trusted: list[str]) -> bool:
    """Loopback addresses, ``localhost`` resolving to loopback only, and the configured hosts
    (:func:`data_pipeline.thinking_graph.egress.host_allowed`, which the client also applies to every request)."""
    from data_pipeline.thinking_graph.egress import host_allowed

    return host_allowed(host, trusted)


class RayConfig(_Strict):
    address: str | None = None
    num_cpus: int | None = Field(None, ge=1)


class ThinkingGraphConfig(_Strict):
    """timelines + EHR-Ins -> concepts -> co-occurrence lift -> UMLS paths -> stage-2 reasoning records."""

    #: Folder of timeline shards (part-*.parquet; ray_jobs.build_timelines output or its timelines/ folder).
    timelines_dir: str
    #: The EHR-Ins dataset folder (ehr_ins.parquet + provenance.parquet; ray_jobs.build_datasets output).
    ehr_ins_dir: str
    output_dir: str
    #: File name of the stage-2 dataset written in output_dir (jsonl).
    output_name: str = "ehr_ins_reasoning.jsonl"
    umls: UmlsSpec = UmlsSpec()
    matcher: MatcherSpec = MatcherSpec()
    evidence: EvidenceSpec = EvidenceSpec()
    synthesis: SynthesisSpec = SynthesisSpec()
    #: Decision-making tasks to use (default: all with concept labels, i.e. not discharge / next_event).
    tasks: list[str] | None = None
    #: Reasoning records written at most (None = all): a seeded draw stratified by task, so every task with
    #: evidence appears (``data_pipeline.thinking_graph.selection``).
    max_samples: int | None = Field(None, ge=1)
    #: Seed of the ``max_samples`` draw.
    seed: int = 0
    num_workers: int = Field(2, ge=1)
    worker_cpus: float = Field(0.5, gt=0)
    #: Hash partitions of the joins and the aggregation (keep small on small clusters).
    num_partitions: int = Field(4, ge=1)
    ray: RayConfig = RayConfig()
    overwrite: bool = False
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _tasks(self) -> "ThinkingGraphConfig":
        if self.tasks is not None:
            from data_pipeline.tasks import get_task

            bad = []
            for t in self.tasks:
                try:
                    if get_task(t).kind != "decision_making":
                        bad.append(f"{t} (risk prediction: no concept labels)")
                except KeyError:
                    bad.append(f"{t} (unknown)")
            if bad:
                raise ValueError(f"tasks: {', '.join(bad)}; name decision-making tasks")
        return self
