# Comparison (PVD supplementary Table 4, Cylinder3D): Hinton KD, KL between
# the teacher's and the student's softened point class distributions
# (temperature T, loss scaled by T^2), coefficient 0.2.
_base_ = ['./pvd_cylinder3d_0.5x_demo.py']

model = dict(
    distill_terms=dict(
        _delete_=True,
        kd=dict(student='logits', teacher='logits',
                rows=dict(type='Cylinder3DRows'),
                loss=dict(type='PointOutputKDLoss', temperature=2.0,
                          loss_weight=0.2))))
