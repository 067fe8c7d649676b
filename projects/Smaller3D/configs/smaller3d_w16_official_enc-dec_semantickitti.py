# The released Smaller3D code's loss instead of the paper's: teacher
# hard-label cross-entropy plus a logit L2 term,
#   (1 - alpha) * CE(z_S, argmax z_T)
#   + alpha * mean_v sum_c (z_S - z_T)^2 / (2 T^2),
# no ground-truth term (task_loss_weight 0), with both feature losses.
_base_ = ['./smaller3d_w16_a05_enc-dec_semantickitti.py']

model = dict(distill_terms=dict(kd=dict(loss=dict(form='official'))))
