"""The judge: whether a program solves a task, decided where the program cannot reach."""

from rsi_bench.judge.judge import Job, Judge, JudgeError, judge_all, task_seed
from rsi_bench.judge.verdict import STATUSES, Verdict

__all__ = ["STATUSES", "Job", "Judge", "JudgeError", "Verdict", "judge_all", "task_seed"]
