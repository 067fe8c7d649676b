# Smaller3D on the demo data, Table 2 column "Half, alpha 0.5, T 1, +
# decoder loss" (last decoder map, 48 -> 96 channels, 1x1 sparse conv).
_base_ = ['./smaller3d_w16_a05_demo.py']

model = dict(
    student_recorders=dict(decoder=dict(source='backbone.decoder.3.1')),
    teacher_recorders=dict(decoder=dict(source='backbone.decoder.3.1')),
    distill_terms=dict(
        decoder=dict(
            student='decoder',
            teacher='decoder',
            rows=dict(type='SparseRows'),
            loss=dict(
                type='SparseFeatureMSELoss',
                student_channels=48,
                teacher_channels=96,
                loss_weight=1.0))))
