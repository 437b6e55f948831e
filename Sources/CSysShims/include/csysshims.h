// System calls that Glibc's Swift module does not export.
#ifndef IDPSYNC_CSYSSHIMS_H
#define IDPSYNC_CSYSSHIMS_H
#include <sys/types.h>
#include <sys/xattr.h>

/// fgetxattr(2): the value of extended attribute `name` of an open file (POSIX ACLs live there).
static inline long idpsync_fgetxattr(int fd, const char *name, void *value, unsigned long size) {
    return (long)fgetxattr(fd, name, value, (size_t)size);
}
#endif
