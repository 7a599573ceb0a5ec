"""CodeDPO (arXiv 2410.05605): self-generated programs and tests, mutual verification,
efficiency timing on the trusted tests, and DPO on the preference pairs they yield.

Stages (build.py) with JSON-lines files between them: tasks -> samples (k programs and
m tests per problem) -> matrix (every program on every test, each cell judged on its
own) -> scores (verify.py) -> timing (timing.py) -> pairs (pairs.py); then train.py
trains DPO (or the SFT control) on the learner and the evaluation compares models."""
