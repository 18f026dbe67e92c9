# tests/readme_block.cmake - does a README code block still match the file it was copied from?
#
# The README shows examples that the test suite builds from a file of their own; this check
# (run by ctest as `cmake -P`) fails when the two drift apart. The block is the first fenced
# block after the line containing MARKER.
# Variables: README (path), MARKER (text on the line before the block), FILE (the source).
foreach(v README MARKER FILE)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "readme_block.cmake: ${v} is not set")
  endif()
endforeach()
file(READ ${README} readme)
string(FIND "${readme}" "${MARKER}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${README}: no line with '${MARKER}'")
endif()
string(SUBSTRING "${readme}" ${at} -1 rest)
string(REGEX MATCH "```[a-z]*\n(.*)" _ "${rest}")
set(body "${CMAKE_MATCH_1}")
string(FIND "${body}" "\n```" end)
if(end EQUAL -1)
  message(FATAL_ERROR "${README}: the block after '${MARKER}' is not closed")
endif()
string(SUBSTRING "${body}" 0 ${end} block)
file(READ ${FILE} source)
string(REGEX REPLACE "\n+$" "" source "${source}")
if(NOT block STREQUAL source)
  message(FATAL_ERROR "the README block after '${MARKER}' differs from ${FILE}: copy the file "
                      "into the README (or the README block into the file)")
endif()
