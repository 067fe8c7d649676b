"""Install pointdistiller_mm: ``pip install -e .`` (see the Makefile for the stack)."""
from setuptools import find_packages, setup

setup(
    name='pointdistiller_mm',
    version='0.1.0',
    description='Knowledge distillation for LiDAR 3D detectors and segmentors '
    'as an mmdetection3d 1.4 plugin',
    packages=find_packages(include=['pointdistiller_mm', 'pointdistiller_mm.*']),
    python_requires='>=3.8',
    install_requires=[
        'mmengine==0.10.7', 'mmcv>=2.0.0rc4,<2.2.0', 'mmdet==3.3.0',
        'mmdet3d==1.4.0', 'numpy<2'
    ],
    extras_require={'tests': ['pytest']},
)
