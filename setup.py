"""Python packaging of sam2_ros for pip users.

colcon builds this repository as an ament_cmake package (CMakeLists.txt), which also
generates the ROS interfaces in msg/ and srv/. `pip install .` installs the pure-Python part
only (sam2_ros.core works without ROS); the ROS node needs the colcon build. The interface
definitions go to <prefix>/share/sam2_ros/ as in a ROS install, where the rosbag tools read
the sam2_ros message types. Console scripts are declared in setup.cfg.
"""

from glob import glob

from setuptools import find_packages, setup

setup(
    name='sam2_ros',
    version='0.1.0',
    description='Streaming SAM 2 object tracking with keyframes, drift detection and '
    'YOLOv10 re-anchoring for ROS 2',
    license='Apache-2.0',
    packages=find_packages(include=['sam2_ros', 'sam2_ros.*']),
    package_data={'sam2_ros.console': ['static/*']},
    data_files=[
        ('share/sam2_ros/msg', sorted(glob('msg/*.msg'))),
        ('share/sam2_ros/srv', sorted(glob('srv/*.srv'))),
    ],
    python_requires='>=3.10',
    install_requires=[
        'numpy>=1.24',
        'opencv-python>=4.8',
        'pyyaml>=6.0',
        'torch>=2.5.1',
        'torchvision>=0.20.1',
        # sam2_ros.core subclasses SAM 2 internals: only the tested release is allowed.
        'sam2==1.1.0',
        'huggingface_hub>=0.24',
        'ultralytics>=8.3',
        'rosbags>=0.10',
        # the browser console (sam2_web_console)
        'fastapi>=0.100',
        'uvicorn>=0.29',
        'websockets>=12',
        'pillow>=9',
    ],
    extras_require={
        'test': ['pytest>=8', 'pytest-timeout>=2.3', 'ruff>=0.8', 'selenium>=4.11'],
    },
)
