"""RLCF (arXiv 2305.18341): PPO on a grounding reward (static checks + a discriminator)
instead of the tests.  The reward lives with the shared runtime (cluster/rewards.py,
cluster/grounding.py, actors/discriminator.py, executors/static_checks.py); this package
holds the experiment that compares it with StepCoder's test reward."""
