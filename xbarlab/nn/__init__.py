"""Quantized neural networks on memristor crossbars: the mathematics, with no bench code.

Modules, one job each (reference/techniques.md §1, §2, §6; Nguyen, An, Oh, Truong, Min,
Neuromorph. Comput. Eng. 2, 032001 (2022)):

* `data`: scikit-learn's 8x8 digits, a seeded stratified split, inputs -> row voltages.
* `idx`: IDX (MNIST format) files, plain or gzip, validated.
* `quantize`: binary and ternary quantizers with straight-through gradients.
* `network`, `optim`, `training`: an MLP of crossbar tiles, Adam, software training.
* `mapping`: signed weights -> differential conductance pairs; column currents -> products.
* `placement`: layers as tiles on one array, spare lines, JSON.
* `defects`: defect maps, the weights defective pairs hold, moving tiles off bad lines.
* `inference`: products measured through a bench (board mvm or cell reads).
* `updates`: pulse decisions (significant changes, gating, defect groups).
* `chip_loop`: chip-in-the-loop training over the `Chip` interface.
* `bench_chip`: the `Chip` interface over a bench and a programming callable.

Nothing here imports a driver, the simulator or the physics: a protocol hands in a bench.
"""
