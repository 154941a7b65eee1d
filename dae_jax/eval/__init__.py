"""``--mode=eval``: the paper's claims as numbers for a trained model.

``evaluate`` runs the chains and gathers the measures; each measure has its own module (``swd``,
``reconstruction``, ``nearest``, ``linear_probe``, ``prior_match``) and ``report`` writes what a reader looks at.
"""
