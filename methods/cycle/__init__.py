"""CYCLE (arXiv 2403.18746): teach a code model to refine its own faulty programs from
execution feedback, on execrl's executors, rollout pool and SFT learner.

The recipe, one module per concern, files between stages (pipeline.py):
    config.py    configs/cycle.yaml over a base execrl config
    collect.py   step 2: sample the Phase I (SFT) model on training problems, judge, keep all
    feedback.py  the short execution-feedback text the model sees
    template.py  the refinement prompt and its token budget
    pgm.py       past-generation masking of the faulty program in training inputs
    data.py      step 3: refinement examples, token rows, mixing with generation rows
    train.py     step 4: the learner's SFT on the mix
    refine.py    step 5: iterative self-refinement and its figures (execrl eval --refine)
    backends.py  the rollout and executor pools as the loop's generate and judge
    experiment.py  the variants x seeds behind README's table
"""
