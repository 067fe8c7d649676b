# Smaller3D, Table 2 column "Half, alpha 0.5, T 1, + decoder loss": logit KD
# plus the MSE between the teacher's last decoder map (96 channels) and the
# student's (48) lifted by a trainable 1x1 sparse convolution (a per-voxel
# linear layer), voxels paired by coordinates.
_base_ = ['./smaller3d_w16_a05_semantickitti.py']

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
