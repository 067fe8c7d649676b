# PointDistiller on the demo data: the 8x PointRCNN student learns from the
# demo PointRCNN teacher (configs/demo/pointrcnn_teacher.py) through the
# FP-neck point features (128 -> 45 channels): top-N points by the channel
# maximum of the teacher feature, local graphs of K neighbours, max over K,
# loss reweighted by softmax of the max over channels of the teacher's graph
# features. Same schedule as the plain student.
_base_ = ['./pointrcnn_8x_student.py']

teacher_config = 'configs/demo/pointrcnn_teacher.py'
# a checkpoint file, or a work dir (its newest checkpoint is used)
teacher_checkpoint = 'work_dirs/pointrcnn_teacher'

model = dict(
    _delete_=True,
    type='Distiller3D',
    student={{_base_.model}},
    teacher=dict(config=teacher_config, checkpoint=teacher_checkpoint),
    student_recorders=dict(points=dict(source='neck')),
    teacher_recorders=dict(points=dict(source='neck')),
    distill_terms=dict(
        points=dict(
            student='points',
            teacher='points',
            rows=dict(type='PointRows'),
            loss=dict(
                type='PointDistillerLoss',
                student_channels=45,
                teacher_channels=128,
                # a quarter of the paper's 6000, as the demo scans hold a
                # quarter of the points (4096 of 16384)
                num_samples=1500,
                k=128,
                knn_space='feature',
                edge_mode='cat',
                aggregation='max',
                reweight=True,
                phi_source='teacher_graph',
                local_distill=True,
                tau=1.0,
                norm='mse',
                loss_weight=1.0))))

custom_hooks = [dict(type='DistillLossWeightHook', mode='constant'),
                dict(type='MallocTrimHook', interval=10)]
