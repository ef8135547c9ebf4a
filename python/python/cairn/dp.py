"""Plan a privacy budget: the calculators of ``cairn dp``.

>>> from cairn import dp
>>> plan = dp.sigma(epsilon=4, delta=1e-6, rounds=10, sensitivity=1)
>>> round(dp.epsilon(sigma=plan["sigma"], sensitivity=1, delta=1e-6, rounds=10)["epsilon"], 6) <= 4
True

Without sampling (``sampling_rate=1``) the accountant is zCDP of the discrete
Gaussian (Canonne, Kamath, Steinke 2020), converted to (ε, δ) with their tight
conversion; with ``sampling_rate < 1`` it is the Rényi DP of the Poisson-subsampled
discrete Gaussian, converted with Balle et al. 2020 (the sources are cited in
``dp/src/zcdp.rs`` and ``dp/src/rdp.rs``). Units: ``sigma`` and ``sensitivity`` in
the same (quantised) units.

A record-level report sums at most ``max_records`` sampled records; an organisation
whose sample is larger skips the round, which adds ``cap_delta(...)`` to δ:

>>> dp.cap_delta(records=1523, rate=0.04, max_records=127, rounds=600, epsilon=1) < 1e-10
True
"""

from cairn._cairn import cap_delta, epsilon, poisson_sample, sigma

__all__ = ["cap_delta", "epsilon", "poisson_sample", "sigma"]
