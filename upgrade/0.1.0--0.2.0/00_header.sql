/*
 * jobq--0.1.0--0.2.0.sql: from 0.1.0 to 0.2.0, built from the fragments of
 * upgrade/0.1.0--0.2.0/ (in name order), then the re-creatable files of
 * src/sql/ (see the Makefile)
 */

\echo Use "ALTER EXTENSION jobq UPDATE TO '0.2.0'" to load this file. \quit
