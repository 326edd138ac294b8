"""``make pyspark``'s start-up file: PySpark's shell runs it after its own (``spark`` is set).

It defines ``lake``, the demo's datasets as paths for ``spark.read``, and prints how to read
them (``etl/tools/sparkshell.py``).
"""

from etl.adapters.lake import open_lake as _open_lake
from etl.settings import setting as _setting
from etl.tools.sparkshell import LakePaths as _LakePaths
from etl.tools.sparkshell import greeting as _greeting

lake = _LakePaths(_open_lake(_setting("storage")))
print(_greeting(lake))
