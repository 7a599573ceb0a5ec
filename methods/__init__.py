"""Training methods built on execrl's machinery (one package each): CYCLE, CodeDPO.

A method composes the runtime (cluster/), the learner, the actors, the executors and
the curriculum; nothing beneath it imports a method."""
