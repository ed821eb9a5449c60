/* jobq--0.1.0--0.2.0.sql: from 0.1.0 to 0.2.0 (built from upgrade/0.1.0--0.2.0/) */

\echo Use "ALTER EXTENSION jobq UPDATE TO '0.2.0'" to load this file. \quit
