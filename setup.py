"""Install vov3d: ``pip install -e .`` (``.[test]`` adds the test and export tools)."""

from setuptools import find_packages, setup

setup(
    name="vov3d",
    version="0.1.5",
    description="Efficient video classification: X3D and VoV3D (T-OSA, D(2+1)D) on Kinetics and Something-Something",
    license="Apache-2.0",
    python_requires=">=3.9",
    # configs/ ships inside the package as vov3d/configs, where vov3d.config.config_root finds it.
    packages=find_packages(include=["vov3d", "vov3d.*"]) + ["vov3d.configs"],
    package_dir={"vov3d.configs": "configs"},
    package_data={"vov3d": ["data/*.txt"], "vov3d.configs": ["**/*.yaml"]},
    install_requires=[
        "torch>=2.5",  # torch.amp.GradScaler (2.3), torch.onnx.export(dynamo=...) (2.5)
        "torchvision>=0.20",
        "av>=10.0",
        "fvcore>=0.1.5",
        "iopath>=0.1.9",
        "numpy>=1.22",
        "Pillow>=10.1",  # ImageFont.load_default(size=...): a scalable font for the figures and the demo
        "PyYAML>=5.4",
        "simplejson>=3.17",
        "tensorboard>=2.10",
        "tqdm>=4.60",
        "yacs>=0.1.8",
    ],
    extras_require={
        "onnx": ["onnx>=1.14", "onnxruntime>=1.16"],
        "vis": ["captum>=0.7"],  # Grad-CAM (demo.py --gradcam, TENSORBOARD.MODEL_VIS)
        "test": ["pytest>=7.0", "pytest-timeout>=2.1", "onnx>=1.14", "onnxruntime>=1.16", "ruff>=0.4", "captum>=0.7"],
    },
    entry_points={
        "console_scripts": [
            "vov3d-run=vov3d.cli.run_net:main",
            "vov3d-predict=vov3d.cli.predict:main",
            "vov3d-demo=vov3d.cli.demo:main",
            "vov3d-export=vov3d.cli.export:main",
            "vov3d-benchmark=vov3d.cli.benchmark:main",
            "vov3d-folder-to-csv=vov3d.cli.folder_to_csv:main",
        ]
    },
)
