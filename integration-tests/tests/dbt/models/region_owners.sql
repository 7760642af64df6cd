{{ config(materialized='view') }}
select c.region_key, c.nations, o.owner
from {{ ref('nation_counts') }} c
left join {{ ref('owners') }} o on o.region_key = c.region_key
