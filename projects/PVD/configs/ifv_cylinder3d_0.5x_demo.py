# Comparison (PVD supplementary Table 4, Cylinder3D): IFV, intra-class
# feature variation distillation (Wang et al., ECCV 2020) on the decode
# head's input features, voxel labels = majority point label; 0.2.
_base_ = ['./pvd_cylinder3d_0.5x_demo.py']

model = dict(
    distill_terms=dict(
        _delete_=True,
        ifv=dict(student='feats', teacher='feats',
                 rows=dict(type='Cylinder3DRows'),
                 loss=dict(type='IFVLoss', num_classes=19,
                           loss_weight=0.2))))
