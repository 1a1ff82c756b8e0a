#ifndef MICA_VERSION_H
#define MICA_VERSION_H

/*
 * The one place the release is named: micad, mica and mica-admin print
 * it for --version.
 */
#define MICA_VERSION	"0.9.0"

#endif /* MICA_VERSION_H */
