"""Helpers shared by the command-line tools."""
from .config_checks import (ConfigError, check_cfg_options, check_checkpoint,
                            check_datasets, load_config, prepare_config,
                            replace_data_root, skip_teacher_weights)
from .machine import adapt_config_to_machine, setup_cpu_distributed

__all__ = [
    'ConfigError', 'load_config', 'prepare_config', 'check_cfg_options',
    'check_datasets', 'check_checkpoint', 'replace_data_root',
    'skip_teacher_weights',
    'adapt_config_to_machine', 'setup_cpu_distributed'
]
