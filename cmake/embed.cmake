# Writes a file's bytes as the body of a C array initialiser, NUL-terminated,
# for a .c file to #include between braces (server/dashboard.c):
#   cmake -DIN=page.html -DOUT=page.inc -P embed.cmake
# file(READ ... HEX) does the conversion, so no xxd is needed.
if(NOT IN OR NOT OUT)
  message(FATAL_ERROR "usage: cmake -DIN=FILE -DOUT=FILE.inc -P embed.cmake")
endif()
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# 16 bytes per line keeps the lines short for compilers and diffs.
# (CMake's regular expressions have no {16}: the pattern is spelled out.)
string(REPEAT "0x[0-9a-f][0-9a-f]," 16 line)
string(REGEX REPLACE "(${line})" "\\1\n" bytes "${bytes}")
get_filename_component(name "${IN}" NAME)
file(WRITE "${OUT}.tmp"
     "/* Generated from ${name} by cmake/embed.cmake; do not edit. */\n"
     "${bytes}\n0x00 /* NUL */\n")
file(RENAME "${OUT}.tmp" "${OUT}")
