# Smaller3D, Table 2 column "Half, alpha 0.5, T 1": logit KD with the task
# loss and the KD term weighted 0.5 each (Distiller3D scales the student's
# own loss by the KD loss's task_loss_weight = alpha).
_base_ = ['./smaller3d_w16_a1_semantickitti.py']

model = dict(distill_terms=dict(kd=dict(loss=dict(alpha=0.5))))
