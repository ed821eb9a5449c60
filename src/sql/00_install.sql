/*
 * jobq--X.Y.Z.sql: the install script of the version in jobq.control,
 * built from src/sql/ by the Makefile
 */

\echo Use "CREATE EXTENSION jobq" to load this file. \quit
