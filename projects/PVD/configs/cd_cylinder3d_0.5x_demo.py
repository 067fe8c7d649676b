# Comparison (PVD supplementary Table 4, Cylinder3D): CD, channel-wise
# distillation (Shu et al., ICCV 2021) on the decode head's input features
# (lambda_fea 0.1, linear connector 64 -> 128) and on the voxel logits
# (lambda_score 0.3), temperature 4.
_base_ = ['./pvd_cylinder3d_0.5x_demo.py']

model = dict(
    distill_terms=dict(
        _delete_=True,
        cd_fea=dict(student='feats', teacher='feats',
                    rows=dict(type='Cylinder3DRows'),
                    loss=dict(type='ChannelWiseKDLoss', temperature=4.0,
                              student_channels=64, teacher_channels=128,
                              loss_weight=0.1)),
        cd_score=dict(student='logits', teacher='logits',
                      rows=dict(type='Cylinder3DRows'),
                      loss=dict(type='ChannelWiseKDLoss', temperature=4.0,
                                loss_weight=0.3))))
