select n_regionkey as region_key, count(*) as nations
from tpch.tiny.nation
group by n_regionkey
