"""``--mode=theory``: the score identity checked against ground truth (``score_check``) and its report."""
