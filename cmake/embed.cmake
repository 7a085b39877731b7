# cmake -DIN=FILE -DOUT=HEADER -DNAME=SYMBOL -P embed.cmake: writes HEADER
# holding FILE's bytes as `static const unsigned char SYMBOL[]` and
# `SYMBOL_len`, so a program serves the file without reading it at run time.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE "${OUT}.tmp" "/* generated from ${IN} by cmake/embed.cmake: do not edit */\n"
  "static const unsigned char ${NAME}[] = {\n${body}};\n"
  "static const size_t ${NAME}_len = ${bytes};\n")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
file(REMOVE "${OUT}.tmp")
