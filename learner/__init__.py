"""The DeepSpeed learner: PPO (policy, critic, reference), SFT and DPO on one set of engines.

    ppo_math.py    the equations (log-probs, KL, GAE and the critic-free estimators, whitening,
                   clipped losses, loss aggregation, over-length penalty, KL controller)
    batches.py     typed batches at the boundary: PPOBatch, SFTBatch, DPOBatch
    ppo.py         PPOLearner: experience, then clipped updates; checkpoint helpers
    sft.py, dpo.py the supervised warm start / refinement and CodeDPO's preference training
    engines.py     DeepSpeed engines; critic.py the value model; ds_config.py their config
    dist.py        process group setup on CPU (gloo) or GPU (NCCL)
    checkpoint.py  resumable checkpoints; export.py Hugging Face export (ZeRO-3 included)
    lora.py        LoRA on the policy (peft) and the merged weights rollouts and exports get
    broadcast.py   the policy's weights from every rank to vLLM by NCCL (ZeRO-3 gathered per module)
    bench.py       DeepSpeed vs plain torch (`execrl bench learner`); bench_estimators.py per estimator

Importing this package imports nothing heavy; learner.dist (imported by the engine
modules) must come before any other import of deepspeed.
"""
