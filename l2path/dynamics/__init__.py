"""Nielsen's weight-decay exercise: how each layer's weights evolve under the L2 update.

With n training samples, mini-batch size m, rate eta and penalty lambda, one step is
(network2.py; biases are not decayed)

    W -> (1 - eta*lambda/n) W - (eta/m) sum_{x in B} dC_x/dW.

While the data term is negligible along W, an epoch of ceil(n/m) steps multiplies every
weight by (1 - eta*lambda/n)^ceil(n/m) ~ exp(-eta*lambda/m).

- ``plan``: which models the stage trains (the question's setting, the book's, a lambda
  sweep) and for how many epochs;
- ``records``: one pass per epoch that measures every model (losses, the full-batch and
  mini-batch gradient terms, saturation);
- ``training``: the stacks, one per seed, and their per-epoch records;
- ``theory``: the measured per-epoch factor against the first- and second-order theory;
- ``tail_off``: the per-epoch shrink rate relative to the theory, its trend and where it
  crosses a stated fraction;
- ``equilibrium``: the RMS at which each layer levels off, across lambda;
- ``tables``: the DVC plot tables (columns named by setting and initialiser, ``curves``) and
  the stage's metrics;
- ``summary``: the typed records the stage writes and the report reads back (a row of the
  theory table, a level-off slope, metrics/dynamics.json).
"""
