# mmdet3d's SemanticKITTI dataset config (19 classes, stock labels_map,
# pipelines and SegMetric) on the synthetic SemanticKITTI-format demo data
# made by `python tools/create_demo_data.py --dataset semantickitti`, with
# small batches and few workers for a 2-core CPU. Segmentation demo configs
# (Cylinder3D, MinkUNet) inherit this file next to their model and schedule.
_base_ = ['mmdet3d::_base_/datasets/semantickitti.py']

custom_imports = dict(imports=['pointdistiller_mm'], allow_failed_imports=False)

data_root = 'data/demo_semantickitti/'
batch_size = 2
num_workers = 2

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=num_workers,
    persistent_workers=True,
    dataset=dict(data_root=data_root))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
