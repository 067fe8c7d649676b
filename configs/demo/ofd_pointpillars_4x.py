# Overhaul of feature distillation (Heo et al., ICCV 2019) on the demo data.
# OFD needs features before the ReLU; the pillar map is taken after one, so
# the distilled feature is the first backbone stage before its last ReLU:
# the recorders take the output of that stage's last conv
# (backbone.blocks.0.9) and the loss applies the following BatchNorm
# (backbone.blocks.0.10) itself, since the ReLU after it works in place.
# The margin comes from the teacher's BatchNorm. Everything but the
# distillation recipe is the PointDistiller demo config's.
_base_ = ['./pointpillars_4x_pointdistiller.py']

model = dict(
    student_recorders=dict(
        _delete_=True, stage1_conv=dict(source='backbone.blocks.0.9')),
    teacher_recorders=dict(
        _delete_=True, stage1_conv=dict(source='backbone.blocks.0.9')),
    distill_terms=dict(
        _delete_=True,
        ofd=dict(
            student='stage1_conv',
            teacher='stage1_conv',
            rows=dict(type='FeaturePair'),
            loss=dict(
                type='OFDLoss',
                student_channels=32,
                teacher_channels=64,
                teacher_bn='backbone.blocks.0.10',
                student_bn='backbone.blocks.0.10',
                apply_bn=True,
                connector='conv',
                # OFD's CIFAR weight (batch sum / 1000) gives about 2e2 on
                # this map's 64 x 64 x 64 elements per sample; 5e-5 starts
                # the term near 10
                loss_weight=5e-5))))
