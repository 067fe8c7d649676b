# PVD supplementary Table 2, row 3: alpha1 0.15, alpha2 0.15, beta1 0.15,
# beta2 0.25 (the default, row 6, is 0.1 / 0.15 / 0.15 / 0.25:
# pvd_cylinder3d_0.5x_demo.py).
_base_ = ['./pvd_cylinder3d_0.5x_demo.py']

model = dict(
    distill_terms=dict(
        out_p=dict(loss=dict(loss_weight=0.15)),
        out_v=dict(loss=dict(loss_weight=0.15)),
        aff_p=dict(loss=dict(loss_weight=0.15)),
        aff_v=dict(loss=dict(loss_weight=0.25))))
