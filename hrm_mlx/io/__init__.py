"""Model folders: load from a folder or the Hugging Face Hub, save atomically, convert official PyTorch checkpoints.

The package's modules: ``folders`` (the format below: read, check, write), ``hub`` (resolving a folder, checkpoint
or repo id; the caches), ``conversion`` (official checkpoints), ``third_party`` (other trainers' checkpoint layouts) and
``torch_checkpoint`` (reading torch.save files without torch).

Model folder
============

A model folder holds:

* ``config.json`` (format below);
* the weights: ``model.safetensors``, or for large models shards ``model-00001-of-0000M.safetensors`` ...
  with ``model.safetensors.index.json`` = ``{"metadata": {"total_size": <bytes of tensor data>},
  "weight_map": {<weight name>: <shard file name>}}``. Weights are sharded by whole tensors: a shard is closed
  before it would exceed the maximum shard size, so a single tensor larger than the limit (the ARC-2
  checkpoint's 535M-float puzzle-embedding table) gets a shard of its own. Weight names are ours (what
  ``Model.sanitize()`` makes of the official names); dtypes are float32, bfloat16 or float16;
* ``README.md``: the model card, with the YAML header the Hugging Face Hub reads (``hrm_mlx.model_card``);
* optionally ``identifiers.json``: the list of puzzle-identifier names (index = puzzle id, ``"<blank>"`` at 0),
  as the official ARC dataset builder writes it, so a solver can map an ARC task name to its embedding row.

config.json
-----------

A flat JSON object::

    {
      "family": "hrm",                    # model family: a key of hrm_mlx.models.FAMILIES ("hrm", "trm")
      "seq_len": 81, "vocab_size": 11,    # every field of the family's ModelArgs, official names
      "num_puzzle_identifiers": 1, "puzzle_emb_ndim": 512,
      "H_cycles": 2, "L_cycles": 2, "H_layers": 4, "L_layers": 4, "hidden_size": 512, "expansion": 4,
      "num_heads": 8, "pos_encodings": "rope", "halt_max_steps": 16, "halt_exploration_prob": 0.1,
      "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "forward_dtype": "bfloat16",
      "loss_type": "stablemax_cross_entropy", "mixer": "attention", "mixer_args": {},
      "task": {"name": ..., ...}          # optional: what the model solves
    }

``mixer_args`` holds the options of the token mixer ``mixer`` (``hrm_mlx.models.mixers``; older files kept them
at the top level, which still loads). ``task`` is the block the task writes (``Task.model_info``): its ``name``
(a task of ``hrm_mlx.tasks``), whether training supervised only the cells a model fills (``supervise``), and the
task's encoding options (the canvas tasks, maze and ARC: ``canvas``, the side of the square grid the sequence
encodes, 30 for the official models). Model fields with a default (rms_norm_eps, rope_theta, forward_dtype,
loss_type, mixer, mixer_args, puzzle_emb_ndim) may be omitted; other keys are kept and ignored by
``hrm_mlx.models.build``.

Where models come from
======================

``load(path_or_repo)`` and every ``--model`` option accept:

* a model folder;
* an official checkpoint: a folder holding a ``torch.save`` file named ``checkpoint`` (or ``step_<N>``, the
  highest N), with ``all_config.yaml`` beside it, or such a file itself; or another trainer's checkpoint
  (``hrm_mlx.io.third_party``: a run folder of the official TRM trainer's reproductions, a nano-trm Lightning
  ``.ckpt``), also when it sits in the one subfolder that holds checkpoints. It is converted once into
  ``<cache>/converted/<key>`` (``<cache>`` = ``$HRM_MLX_CACHE``, else ``$XDG_CACHE_HOME/hrm-mlx``, else
  ``~/.cache/hrm-mlx``; the key covers the absolute path, size and mtime of the files) and reused afterwards;
* a Hugging Face Hub repo id (``owner/name``, optional ``revision``), fetched with ``snapshot_download`` into the
  standard Hugging Face cache (``HF_HOME``, ``HF_HUB_CACHE``; ``HF_HUB_OFFLINE=1`` uses the cache only). Only the
  files matching ``HUB_FILES`` are fetched. A repo in another trainer's format (``sapientinc/HRM-checkpoint-*``,
  ``Sanjin2024/TinyRecursiveModels-*``) is converted once, keyed by repo and commit.

Official checkpoints
====================

``convert()`` reads the pickle without torch (``hrm_mlx.io.torch_checkpoint``: anything but tensors is refused),
maps the names through the family's ``Model.sanitize()`` and infers what the official ``all_config.yaml``
(a dump of the official PretrainConfig: ``arch: {name, loss: {name, loss_type}, H_cycles, ...}``,
``data_path`` (TRM: a list ``data_paths``), training settings) does not hold, because the official code took it from the dataset:
``vocab_size`` (embed_tokens rows), ``num_puzzle_identifiers`` and ``puzzle_emb_ndim`` (puzzle table shape),
``seq_len`` (embed_pos rows for learned positions; else the ``seq_len`` given; else the task's
``official_seq_len``) and the task (the ``task`` given; else the task whose ``names_data_path`` accepts the
``data_path``; else the one task with an official model whose ``vocab_size`` this is). Without ``all_config.yaml``
the architecture comes from the ``config`` given (an all_config.yaml, a JSON/YAML with the arch fields, or a
recipe name); the official ARC-2 repo, which lacks the file, falls back
to the official default architecture (recipe ``hrm-arc-1``; README: ARC-2 overrides only the data path), and
the other repos of ``third_party.KNOWN_REPOS`` to the recipes of their training commands. A nano-trm checkpoint
carries its architecture in its Lightning hyper-parameters (``third_party.nano_trm``).
"""

from hrm_mlx.io.conversion import convert
from hrm_mlx.io.folders import (DEFAULT_MAX_SHARD_SIZE, load_folder, parse_size, read_config, read_identifiers, save,
                                validate_config, validate_folder)
from hrm_mlx.io.hub import cache_dir, load, load_identifiers, resolve

__all__ = ["load", "save", "convert", "resolve", "load_identifiers", "read_config", "validate_config",
           "validate_folder", "parse_size", "cache_dir", "load_folder", "read_identifiers", "DEFAULT_MAX_SHARD_SIZE"]
