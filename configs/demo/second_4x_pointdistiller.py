# PointDistiller on the demo data for SECOND: the 4x student learns from the
# demo SECOND teacher (configs/demo/second_teacher.py) through both BEV maps
# of the backbone (stride 8 and 16): per sample the top-N cells by the number
# of points they hold, local graphs of K neighbours, reweighted loss. Same
# schedule as the plain student.
_base_ = ['./second_4x_student.py']

teacher_config = 'configs/demo/second_teacher.py'
# a checkpoint file, or a work dir (its newest checkpoint is used)
teacher_checkpoint = 'work_dirs/second_teacher'

model = dict(
    _delete_=True,
    type='Distiller3D',
    student={{_base_.model}},
    teacher=dict(config=teacher_config, checkpoint=teacher_checkpoint),
    # the backbone returns (stride-8 map, stride-16 map)
    student_recorders=dict(
        bev0=dict(source='backbone', index=0),
        bev1=dict(source='backbone', index=1)),
    teacher_recorders=dict(
        bev0=dict(source='backbone', index=0),
        bev1=dict(source='backbone', index=1)),
    distill_terms=dict(
        bev0=dict(
            student='bev0',
            teacher='bev0',
            rows=dict(type='BEVRows', score='point_count'),
            loss=dict(
                type='PointDistillerLoss',
                student_channels=64,
                teacher_channels=128,
                num_samples=256,
                k=128,
                knn_space='feature',
                edge_mode='cat',
                aggregation='max',
                reweight=True,
                local_distill=True,
                tau=1.0,
                norm='mse',
                loss_weight=1.0)),
        bev1=dict(
            student='bev1',
            teacher='bev1',
            rows=dict(type='BEVRows', score='point_count'),
            loss=dict(
                type='PointDistillerLoss',
                student_channels=128,
                teacher_channels=256,
                num_samples=256,
                k=128,
                knn_space='feature',
                edge_mode='cat',
                aggregation='max',
                reweight=True,
                local_distill=True,
                tau=1.0,
                norm='mse',
                loss_weight=1.0))))

custom_hooks = [dict(type='DistillLossWeightHook', mode='constant')]
