#!/bin/sh
# Prints the greeting in a frame, with the build host's kernel name.
set -e
text=$(cat "$1")
echo "+-----------------------+"
echo "| $text |"
echo "+-----------------------+"
echo "built on $(uname -s)"
