"""The EHR-R1 task suite: 28 decision-making and 18 risk-prediction sample generators.

Importing this package registers every task (pure Python, no heavy imports). Public API::

    from data_pipeline.tasks import all_tasks, get_task, task_names, tasks_needing_tables, generate_instances
"""

from data_pipeline.tasks import decision_making as _decision_making  # noqa: F401  (registers DM tasks)
from data_pipeline.tasks import risk_prediction as _risk_prediction  # noqa: F401  (registers RP tasks)
from data_pipeline.tasks.generate import generate_instances
from data_pipeline.tasks.spec import (DECISION_MAKING, RISK_PREDICTION, Instance, TaskSpec, all_tasks,
                                      canonical_name, get_task, missing_requirements, register, task_names,
                                      tasks_needing_tables)

__all__ = ["DECISION_MAKING", "RISK_PREDICTION", "Instance", "TaskSpec", "all_tasks", "canonical_name",
           "generate_instances", "get_task", "missing_requirements", "register", "task_names",
           "tasks_needing_tables"]
